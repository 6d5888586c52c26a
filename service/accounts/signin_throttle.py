"""Failed password sign-ins counted per user name and per client address, in the account store."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass

from service.accounts.store import Accounts

# Kept in the accounts' SQLite file: every gunicorn worker (and every instance sharing
# USERS_DB) sees the same counters and locks, which process memory could not give.
# An attempt is counted BEFORE its password is checked (one row per name and per address,
# tagged with the attempt), in one write-locked transaction with the limit check: parallel
# guesses cannot all pass the check while none is counted yet. A failure keeps its rows; a
# success deletes them. (The first version's signin_failures counted after the check.)
_SCHEMA = """
DROP TABLE IF EXISTS signin_failures;
CREATE TABLE IF NOT EXISTS signin_attempts (
  kind TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL, attempt TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS signin_attempts_by_key ON signin_attempts (kind, key, at);
CREATE TABLE IF NOT EXISTS signin_locks (
  kind TEXT NOT NULL, key TEXT NOT NULL, until REAL NOT NULL, PRIMARY KEY (kind, key));
"""
NAME, ADDRESS = "name", "address"
MAX_KEY = 100  # an address from a proxy header is the caller's text: bound what is stored


@dataclass(frozen=True)
class Limits:
    """How many failures within the window lock a user name or an address, and for how long."""

    per_name: int = 5
    per_address: int = 20
    window_seconds: float = 15 * 60
    lockout_seconds: float = 15 * 60


@dataclass(frozen=True)
class Attempt:
    """A sign-in attempt let through (its id), or refused before any check (`wait` seconds)."""

    id: str | None
    wait: float = 0.0


@dataclass(frozen=True)
class Failure:
    """A failed attempt as counted: failures in the window, and what it locked (if anything)."""

    name_failures: int
    address_failures: int
    locked: tuple[str, ...]  # "name" and/or "address"


def client_key(address: str | None) -> str:
    """The key an address is counted under: IPv4 as is, IPv6 by its /64 (one host's range)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return address.strip()[:MAX_KEY] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        # One subscriber usually holds a whole /64: counting single addresses would let one
        # caller rotate through 2^64 of them.
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class SignInThrottle:
    """Counts failed sign-ins and locks a user name or address after too many in the window."""

    def __init__(self, accounts: Accounts, limits: Limits | None = None) -> None:
        self.accounts = accounts
        self.limits = limits or Limits()
        self._ready = False

    def _prepare(self) -> None:
        if not self._ready:
            with self.accounts.transaction() as db:
                db.executescript(_SCHEMA)
            self._ready = True

    def locked_for(self, name: str, address: str, now: float) -> float:
        """Seconds left of the longest lock on this user name or address (0: not locked)."""
        self._prepare()
        with self.accounts.transaction() as db:
            row = db.execute(
                "SELECT MAX(until) FROM signin_locks WHERE until > ? AND "
                "((kind = ? AND key = ?) OR (kind = ? AND key = ?))",
                (now, NAME, name, ADDRESS, address),
            ).fetchone()
        return max(0.0, row[0] - now) if row and row[0] is not None else 0.0

    def begin(self, name: str, address: str, now: float) -> Attempt:
        """Count an attempt before its password is checked, or refuse it (locked or at the
        limit with attempts in flight); atomic across threads and processes."""
        self._prepare()
        limits = self.limits
        since = now - limits.window_seconds
        with self.accounts.transaction(immediate=True) as db:
            db.execute("DELETE FROM signin_attempts WHERE at <= ?", (since,))
            db.execute("DELETE FROM signin_locks WHERE until <= ?", (now,))
            row = db.execute(
                "SELECT MAX(until) FROM signin_locks WHERE until > ? AND "
                "((kind = ? AND key = ?) OR (kind = ? AND key = ?))",
                (now, NAME, name, ADDRESS, address),
            ).fetchone()
            if row and row[0] is not None:
                return Attempt(None, wait=row[0] - now)
            for kind, key, limit in ((NAME, name, limits.per_name),
                                     (ADDRESS, address, limits.per_address)):
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM signin_attempts WHERE kind = ? AND key = ? AND at > ?",
                    (kind, key, since),
                ).fetchone()
                if count >= limit:
                    # Failures and attempts still being checked fill the limit: no more
                    # passwords are tried until they end (a failure among them locks).
                    return Attempt(None, wait=limits.lockout_seconds)
            attempt = secrets.token_hex(8)
            db.executemany(
                "INSERT INTO signin_attempts (kind, key, at, attempt) VALUES (?, ?, ?, ?)",
                [(NAME, name, now, attempt), (ADDRESS, address, now, attempt)],
            )
        return Attempt(attempt)

    def failed(self, attempt: Attempt, name: str, address: str, now: float) -> Failure:
        """The attempt's password was wrong: it stays counted; lock what reached its limit."""
        self._prepare()
        limits = self.limits
        since = now - limits.window_seconds
        counts: dict[str, int] = {}
        locked: list[str] = []
        with self.accounts.transaction(immediate=True) as db:
            for kind, key, limit in ((NAME, name, limits.per_name),
                                     (ADDRESS, address, limits.per_address)):
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM signin_attempts WHERE kind = ? AND key = ? AND at > ?",
                    (kind, key, since),
                ).fetchone()
                counts[kind] = count
                if count >= limit:
                    # The lock replaces the count: after it ends, a full limit again.
                    db.execute("INSERT OR REPLACE INTO signin_locks (kind, key, until) "
                               "VALUES (?, ?, ?)", (kind, key, now + limits.lockout_seconds))
                    db.execute("DELETE FROM signin_attempts WHERE kind = ? AND key = ?",
                               (kind, key))
                    locked.append(kind)
        return Failure(name_failures=counts[NAME], address_failures=counts[ADDRESS],
                       locked=tuple(locked))

    def succeeded(self, attempt: Attempt, name: str) -> None:
        """A right password: the attempt is not a failure, and the user name's count is reset
        (never the address's: one valid account must not wipe the count of an address trying
        other people's names)."""
        self._prepare()
        with self.accounts.transaction() as db:
            db.execute("DELETE FROM signin_attempts WHERE attempt = ? OR (kind = ? AND key = ?)",
                       (attempt.id, NAME, name))

    def unlock(self, name: str) -> bool:
        """Lift the lock and count of a user name (an administrator's decision); True if any."""
        self._prepare()
        with self.accounts.transaction() as db:
            locks = db.execute("DELETE FROM signin_locks WHERE kind = ? AND key = ?",
                               (NAME, name)).rowcount
            fails = db.execute("DELETE FROM signin_attempts WHERE kind = ? AND key = ?",
                               (NAME, name)).rowcount
        return bool(locks or fails)
