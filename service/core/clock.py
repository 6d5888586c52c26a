"""The one clock: what "now" is, and the date screenings are made as of (SCREEN_AS_OF pins it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from service.core.settings import Settings


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Clock:
    """Every surface asks this, once, at the edge where a request arrives; tests inject one.

    `today()` is the as-of date of a screening nobody gave a date to: SCREEN_AS_OF when set
    (a demo pinned to its seeds' date), else the current UTC date. `now()` is never pinned:
    it times sign-in, sessions and the Provenance of a person's decision.
    """

    def __init__(self, now: Callable[[], datetime] | None = None, *, as_of: date | None = None):
        self._now = now or _utc_now
        self.as_of = as_of

    @classmethod
    def from_settings(cls, settings: Settings, now: Callable[[], datetime] | None = None) -> Clock:
        """The clock these settings describe (SCREEN_AS_OF)."""
        return cls(now, as_of=settings.screen_as_of)

    def now(self) -> datetime:
        """The current time (timezone-aware)."""
        return self._now()

    def today(self) -> date:
        """The date a screening is made as of when its request named none."""
        return self.as_of or self._now().date()

    def set_now(self, now: Callable[[], datetime]) -> None:
        """Move this clock to another time source (tests: a clock they advance by hand)."""
        self._now = now

    def __call__(self) -> datetime:
        # The pages took a bare `() -> datetime` before there was a Clock; calling one still works.
        return self._now()
