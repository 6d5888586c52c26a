"""Coordinator accounts (argon2 hashes in SQLite), each user's last worklist visit and language."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

ROLES = ("coordinator", "viewer")
# Names end up in FHIR identifiers (urn:trial-eligibility:user) and in logs: keep them plain.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
MIN_PASSWORD = 12  # NIST SP 800-63B: at least 8; 12 for an account that writes to records
# NIST SP 800-63B: accept at least 64; argon2 takes any length, but a megabyte of "password"
# is a request to burn CPU. The same bound in `users add` and at sign-in.
MAX_PASSWORD = 256
# zxcvbn's score (0-4): 3 is "safely unguessable" (about 10^10 guesses), against an offline
# attack on a stolen hash file too. zxcvbn judges the first 72 characters (its own bound).
MIN_STRENGTH = 3
_ZXCVBN_CHARS = 72
MAX_DISPLAY = 100


def password_problem(password: str, *context: str) -> str | None:
    """Why a new password is refused (None: accepted): length, then zxcvbn strength.

    `context` (user name, display name) counts as known to an attacker.
    """
    if len(password) < MIN_PASSWORD:
        return f"the password must have at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"the password must have at most {MAX_PASSWORD} characters"
    result = zxcvbn(password[:_ZXCVBN_CHARS], user_inputs=[c for c in context if c])
    if result["score"] < MIN_STRENGTH:
        advice = (result.get("feedback") or {}).get("warning") or "it is easy to guess"
        return (f"the password is too weak ({str(advice).rstrip('.')}): use a few "
                "unrelated words or a password manager")
    return None


def clean_display(text: str) -> str | None:
    """A display name as shown on pages and in FHIR performer, or None when unusable.

    1-100 characters after trimming, no control or format characters (no newline, no
    right-to-left override that would make a name read as another).
    """
    text = text.strip()
    if not text or len(text) > MAX_DISPLAY:
        return None
    if any(unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp")
           for ch in text):
        return None
    return text


class AccountError(ValueError):
    """A bad user name, role or password (the message names which)."""


@dataclass(frozen=True)
class User:
    """A signed-in person: stable name (identifier value), display name and role."""

    name: str
    display: str
    role: str
    source: str = "local"  # local | oidc

    @property
    def can_write(self) -> bool:
        """Coordinators confirm criteria and change workflow; viewers only read."""
        return self.role == "coordinator"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY, display TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL,
  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS visits (
  user TEXT NOT NULL, page TEXT NOT NULL, seen REAL NOT NULL, PRIMARY KEY (user, page));
CREATE TABLE IF NOT EXISTS preferences (
  user TEXT PRIMARY KEY, language TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, display TEXT NOT NULL, role TEXT NOT NULL,
  source TEXT NOT NULL, created REAL NOT NULL, seen REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_by_name ON sessions (name);
CREATE TABLE IF NOT EXISTS outreach (
  user TEXT NOT NULL, study TEXT NOT NULL, mode TEXT NOT NULL, PRIMARY KEY (user, study));
CREATE TABLE IF NOT EXISTS outreach_email (user TEXT PRIMARY KEY, email TEXT NOT NULL);
"""
# How a coordinator is told of new eligible or potential candidates of a study
# (docs/coordinator-funnel.md "Outreach"): an email at once, a daily digest, or nothing.
OUTREACH_MODES = ("immediate", "digest", "none")
EMAIL_RE = re.compile(r"[^@\s<>\"',;]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


class Accounts:
    """The account store of one SQLite file (created on first use, mode 0600)."""

    def __init__(self, path: Path, hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self._hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()
        # Verifying an unknown name costs as much as a known one (no user enumeration by time).
        self._dummy = self._hasher.hash("not a password of anyone")
        self._ready = False

    @contextmanager
    def transaction(self, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection to the store inside one transaction (every process shares the file).

        `immediate` takes the write lock at the start: a read-then-write (a count and its
        increment) is then atomic across processes, not only across this process's threads.
        """
        with self._lock:
            if not self._ready:
                # Created on first use (an app that never signs anyone in leaves no file).
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.touch(mode=0o600, exist_ok=True)
                self.path.chmod(0o600)
                with sqlite3.connect(self.path, timeout=10) as init:
                    init.executescript(_SCHEMA)
                init.close()
                self._ready = True
            db = sqlite3.connect(self.path, timeout=10)
            try:
                if immediate:
                    db.isolation_level = None  # we issue BEGIN / COMMIT ourselves
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        yield db
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
                    db.execute("COMMIT")
                else:
                    with db:
                        yield db
            finally:
                db.close()

    def add(self, name: str, role: str, password: str, display: str | None = None) -> User:
        """Create or replace an account (a new password replaces the old hash)."""
        if not NAME_RE.fullmatch(name):
            raise AccountError(
                f"user name {name!r}: use 1-64 lower-case letters, digits, '.', '_', '@' or '-'"
            )
        if role not in ROLES:
            raise AccountError(f"role {role!r} must be one of: {', '.join(ROLES)}")
        shown = clean_display(display or name)
        if shown is None:
            raise AccountError(f"display name: use 1-{MAX_DISPLAY} characters, no control "
                               "characters or line breaks")
        problem = password_problem(password, name, shown)
        if problem:
            raise AccountError(problem)
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO users (name, display, role, hash, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, shown, role, self._hasher.hash(password), time.time()),
            )
            # A new password or role ends every session of the account (a copied cookie of
            # the old role or password stops working at its next request).
            db.execute("DELETE FROM sessions WHERE name = ?", (name,))
        return User(name=name, display=shown, role=role)

    def exists(self, name: str) -> bool:
        """True when the account exists."""
        with self.transaction() as db:
            return db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() is not None

    def get(self, name: str) -> User | None:
        """The account, or None."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT name, display, role FROM users WHERE name = ?", (name,)
            ).fetchone()
        return User(*row) if row else None

    def list(self) -> list[User]:
        """Every account, by name."""
        with self.transaction() as db:
            rows = db.execute("SELECT name, display, role FROM users ORDER BY name").fetchall()
        return [User(*r) for r in rows]

    def remove(self, name: str) -> bool:
        """Delete the account; True when it existed."""
        with self.transaction() as db:
            db.execute("DELETE FROM sessions WHERE name = ?", (name,))  # signed out everywhere
            # and told of nothing any more (outreach email goes to people with an account)
            db.execute("DELETE FROM outreach WHERE user = ?", (name,))
            db.execute("DELETE FROM outreach_email WHERE user = ?", (name,))
            return db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def verify(self, name: str, password: str) -> User | None:
        """The account when the password matches, else None (same cost either way)."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT name, display, role, hash FROM users WHERE name = ?", (name,)
            ).fetchone()
        stored = row[3] if row else self._dummy
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(stored):
            with self.transaction() as db:
                db.execute(
                    "UPDATE users SET hash = ? WHERE name = ?",
                    (self._hasher.hash(password), name),
                )
        return User(name=row[0], display=row[1], role=row[2])

    def language(self, user: str) -> str | None:
        """The page language the person chose (a locale name such as 'zh_CN'), or None."""
        with self.transaction() as db:
            row = db.execute("SELECT language FROM preferences WHERE user = ?", (user,)).fetchone()
        return str(row[0]) if row else None

    def set_language(self, user: str, language: str) -> None:
        """Keep the person's page language (local and OpenID Connect users alike)."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO preferences (user, language) VALUES (?, ?)",
                       (user, language))

    def swap_visit(self, user: str, page: str, now: float) -> float | None:
        """Record a visit of `page` now; the previous visit's time (None the first time)."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT seen FROM visits WHERE user = ? AND page = ?", (user, page)
            ).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO visits (user, page, seen) VALUES (?, ?, ?)",
                (user, page, now),
            )
        return row[0] if row else None

    def set_outreach(self, user: str, email: str, modes: dict[str, str]) -> None:
        """Keep the user's outreach address and their choice per study (one transaction)."""
        email = email.strip()
        if email and not EMAIL_RE.fullmatch(email):
            raise AccountError(f"{email!r} is not an email address")
        bad = [m for m in modes.values() if m not in OUTREACH_MODES]
        if bad:
            raise AccountError(f"outreach {bad[0]!r} must be one of: {', '.join(OUTREACH_MODES)}")
        if not email and any(m != "none" for m in modes.values()):
            raise AccountError("give an email address to be told by email")
        with self.transaction() as db:
            db.execute("DELETE FROM outreach_email WHERE user = ?", (user,))
            if email:
                db.execute("INSERT INTO outreach_email (user, email) VALUES (?, ?)",
                           (user, email))
            for study, mode in modes.items():
                db.execute("INSERT OR REPLACE INTO outreach (user, study, mode) VALUES (?, ?, ?)",
                           (user, study, mode))

    def outreach_of(self, user: str) -> tuple[str, dict[str, str]]:
        """The user's outreach address ('' if none) and mode per study."""
        with self.transaction() as db:
            row = db.execute("SELECT email FROM outreach_email WHERE user = ?",
                             (user,)).fetchone()
            modes = dict(db.execute("SELECT study, mode FROM outreach WHERE user = ?",
                                    (user,)).fetchall())
        return (row[0] if row else ""), modes

    def subscribers(self, study: str) -> Sequence[tuple[str, str, str]]:
        """(user, mode, email) of everyone told of the study by email (local or OIDC)."""
        with self.transaction() as db:
            rows = db.execute(
                "SELECT o.user, o.mode, e.email FROM outreach o "
                "JOIN outreach_email e ON e.user = o.user "
                "WHERE o.study = ? AND o.mode != 'none' ORDER BY o.user", (study,)).fetchall()
        return [(str(u), str(m), str(e)) for u, m, e in rows]
