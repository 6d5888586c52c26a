"""Server-side sessions of the pages: revocable, with an idle timeout and an absolute lifetime."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from service.accounts.store import Accounts, User

# Activity is written at most this often: a page view is not a database write each time.
_SEEN_GRANULARITY = 15.0
IDLE, EXPIRED, REVOKED = "idle", "expired", "revoked"


def _key(token: str) -> str:
    # Only a hash is stored: a copy of the account store holds no usable cookie.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Loaded:
    """A session looked up: its user, or why there is none (idle, expired, revoked)."""

    user: User | None
    ended: str | None = None


class Sessions:
    """Sessions in the account store (every worker sees a sign-out or a removed account)."""

    def __init__(self, accounts: Accounts, idle_seconds: float, max_seconds: float) -> None:
        self.accounts = accounts
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds

    def start(self, user: User, now: float) -> str:
        """A new session of `user`; the token the cookie carries."""
        token = secrets.token_urlsafe(32)
        with self.accounts.transaction() as db:
            # Ended sessions go at each sign-in, so the table stays as small as the live ones.
            db.execute("DELETE FROM sessions WHERE seen < ? OR created < ?",
                       (now - self.idle_seconds, now - self.max_seconds))
            db.execute(
                "INSERT INTO sessions (id, name, display, role, source, created, seen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_key(token), user.name, user.display, user.role, user.source, now, now),
            )
        return token

    def load(self, token: str, now: float) -> Loaded:
        """The session's user when it is live; else why it ended (and it is deleted)."""
        key = _key(token)
        with self.accounts.transaction() as db:
            row = db.execute(
                "SELECT name, display, role, source, created, seen FROM sessions WHERE id = ?",
                (key,),
            ).fetchone()
            if row is None:
                return Loaded(None, REVOKED)  # signed out, removed, role or password changed
            name, display, role, source, created, seen = row
            ended = (EXPIRED if now - created > self.max_seconds
                     else IDLE if now - seen > self.idle_seconds else None)
            if ended:
                db.execute("DELETE FROM sessions WHERE id = ?", (key,))
                return Loaded(None, ended)
            if now - seen >= _SEEN_GRANULARITY:
                db.execute("UPDATE sessions SET seen = ? WHERE id = ?", (now, key))
        return Loaded(User(name=name, display=display, role=role, source=source))

    def end(self, token: str) -> None:
        """Sign-out: the session is gone, whoever holds a copy of the cookie."""
        with self.accounts.transaction() as db:
            db.execute("DELETE FROM sessions WHERE id = ?", (_key(token),))

    def end_all(self, name: str) -> int:
        """End every session of a user name (an administrator's decision); how many."""
        with self.accounts.transaction() as db:
            return db.execute("DELETE FROM sessions WHERE name = ?", (name,)).rowcount
