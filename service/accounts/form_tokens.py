"""One-time form tokens: a form that writes to the FHIR record is acted on once, if sent twice."""

from __future__ import annotations

import re
import secrets

from service.accounts.store import Accounts

# In the accounts' SQLite file, so every gunicorn worker sees a token another one used.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS used_form_tokens (token TEXT PRIMARY KEY, at REAL NOT NULL);
"""
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
KEEP_SECONDS = 7 * 24 * 3600  # a form left open longer than a week is refused anyway (session)


def new_form_token() -> str:
    """A fresh token for one rendered form."""
    return secrets.token_urlsafe(18)


class FormTokens:
    """Remembers which form tokens were used; claiming one is atomic (its primary key)."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self._ready = False

    def _prepare(self) -> None:
        if not self._ready:
            with self.accounts.transaction() as db:
                db.executescript(_SCHEMA)
            self._ready = True

    def claim(self, token: str, now: float) -> bool:
        """True the first time `token` is claimed, False every later time (or when malformed)."""
        if not TOKEN_RE.fullmatch(token):
            return False
        self._prepare()
        with self.accounts.transaction() as db:
            db.execute("DELETE FROM used_form_tokens WHERE at < ?", (now - KEEP_SECONDS,))
            # INSERT OR IGNORE: of two requests racing with the same token one inserts, one not.
            inserted = db.execute(
                "INSERT OR IGNORE INTO used_form_tokens (token, at) VALUES (?, ?)", (token, now)
            ).rowcount
        return inserted == 1

    def release(self, token: str) -> None:
        """Forget a claim whose write failed, so the same form can be sent again."""
        self._prepare()
        with self.accounts.transaction() as db:
            db.execute("DELETE FROM used_form_tokens WHERE token = ?", (token,))
