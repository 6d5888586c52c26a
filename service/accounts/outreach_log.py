"""What outreach has seen and sent, kept beside the accounts (one SQLite file, durable).

- `known`: every (study, patient) seen as an eligible or potential candidate, once: a
  candidate is "new" exactly once per study, whatever re-screens follow.
- `deliveries`: one row per (user, study, patient) to tell, marked when sent: the same
  candidate is never emailed twice to a user for a study. Claimed before sending (a claim
  that outlives its lease is taken again), so two workers never send the same one.
- `marks`: watermarks (the last FHIR read per study, the last digest per user and study).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.accounts.store import Accounts

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outreach_known (
  study TEXT NOT NULL, patient TEXT NOT NULL, status TEXT NOT NULL, seen REAL NOT NULL,
  PRIMARY KEY (study, patient));
CREATE TABLE IF NOT EXISTS outreach_deliveries (
  user TEXT NOT NULL, study TEXT NOT NULL, patient TEXT NOT NULL, status TEXT NOT NULL,
  mode TEXT NOT NULL, email TEXT NOT NULL, created REAL NOT NULL, claimed REAL,
  attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL DEFAULT 0, sent REAL,
  PRIMARY KEY (user, study, patient));
CREATE TABLE IF NOT EXISTS outreach_marks (key TEXT PRIMARY KEY, value REAL NOT NULL);
"""
CLAIM_SECONDS = 300.0  # a claim older than this (its worker died) is taken again


@dataclass(frozen=True)
class Batch:
    """Unsent deliveries of one user and study, claimed together for one email."""

    user: str
    study: str
    mode: str
    email: str
    patients: tuple[tuple[str, str], ...]  # (patient id, status): never put in the email
    oldest: float


class OutreachLog:
    """The outreach tables in the accounts' SQLite file."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self._ready = False

    def _init(self) -> None:
        if not self._ready:
            with self.accounts.transaction() as db:
                db.executescript(_SCHEMA)
            self._ready = True

    def mark(self, key: str) -> float | None:
        """A watermark, or None when never set."""
        self._init()
        with self.accounts.transaction() as db:
            row = db.execute("SELECT value FROM outreach_marks WHERE key = ?", (key,)).fetchone()
        return float(row[0]) if row else None

    def set_mark(self, key: str, value: float) -> None:
        """Set a watermark."""
        self._init()
        with self.accounts.transaction() as db:
            db.execute("INSERT OR REPLACE INTO outreach_marks (key, value) VALUES (?, ?)",
                       (key, value))

    def note(self, study: str, patient: str, status: str, now: float,
             tell: Sequence[tuple[str, str, str]]) -> bool:
        """Record a candidate; the first time only, a delivery to each (user, mode, email) of
        `tell`. True when the candidate was new."""
        self._init()
        with self.accounts.transaction() as db:
            new = db.execute(
                "INSERT OR IGNORE INTO outreach_known (study, patient, status, seen) "
                "VALUES (?, ?, ?, ?)", (study, patient, status, now)).rowcount > 0
            if new:
                db.executemany(
                    "INSERT OR IGNORE INTO outreach_deliveries (user, study, patient, status, "
                    "mode, email, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(user, study, patient, status, mode, email, now)
                     for user, mode, email in tell])
        return new

    def due(self, now: float) -> list[tuple[str, str, str, float]]:
        """(user, study, mode, oldest created) of unsent, unclaimed deliveries ready to try."""
        self._init()
        with self.accounts.transaction() as db:
            rows = db.execute(
                "SELECT user, study, mode, MIN(created) FROM outreach_deliveries "
                "WHERE sent IS NULL AND next_try <= ? AND (claimed IS NULL OR claimed < ?) "
                "GROUP BY user, study, mode ORDER BY user, study",
                (now, now - CLAIM_SECONDS)).fetchall()
        return [(str(u), str(s), str(m), float(c)) for u, s, m, c in rows]

    def claim(self, user: str, study: str, mode: str, now: float) -> Batch | None:
        """Claim every unsent delivery of (user, study, mode) for one email (atomically)."""
        self._init()
        with self.accounts.transaction() as db:
            rows = db.execute(
                "SELECT patient, status, email, created FROM outreach_deliveries "
                "WHERE user = ? AND study = ? AND mode = ? AND sent IS NULL AND next_try <= ? "
                "AND (claimed IS NULL OR claimed < ?) ORDER BY created",
                (user, study, mode, now, now - CLAIM_SECONDS)).fetchall()
            if not rows:
                return None
            db.executemany(
                "UPDATE outreach_deliveries SET claimed = ? WHERE user = ? AND study = ? "
                "AND patient = ?", [(now, user, study, p) for p, _, _, _ in rows])
        return Batch(user, study, mode, str(rows[-1][2]),
                     tuple((str(p), str(s)) for p, s, _, _ in rows),
                     min(float(c) for _, _, _, c in rows))

    def sent(self, batch: Batch, now: float) -> None:
        """The batch's email went out: never again for these candidates."""
        with self.accounts.transaction() as db:
            db.executemany(
                "UPDATE outreach_deliveries SET sent = ?, claimed = NULL WHERE user = ? AND "
                "study = ? AND patient = ?",
                [(now, batch.user, batch.study, p) for p, _ in batch.patients])

    def failed(self, batch: Batch, now: float, retry_in: float) -> None:
        """The email could not be sent: release the claim and try again after `retry_in`."""
        with self.accounts.transaction() as db:
            db.executemany(
                "UPDATE outreach_deliveries SET claimed = NULL, attempts = attempts + 1, "
                "next_try = ? WHERE user = ? AND study = ? AND patient = ?",
                [(now + retry_in, batch.user, batch.study, p) for p, _ in batch.patients])

    def drop(self, user: str, study: str) -> int:
        """Forget the unsent deliveries of a user who no longer wants email for the study."""
        self._init()
        with self.accounts.transaction() as db:
            return db.execute("DELETE FROM outreach_deliveries WHERE user = ? AND study = ? AND "
                              "sent IS NULL", (user, study)).rowcount

    def sent_count(self, user: str | None = None) -> int:
        """How many deliveries went out (all users, or one)."""
        self._init()
        with self.accounts.transaction() as db:
            if user is None:
                row = db.execute(
                    "SELECT COUNT(*) FROM outreach_deliveries WHERE sent IS NOT NULL").fetchone()
            else:
                row = db.execute("SELECT COUNT(*) FROM outreach_deliveries WHERE sent IS NOT "
                                 "NULL AND user = ?", (user,)).fetchone()
        return int(row[0])
