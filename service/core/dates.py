"""Calendar dates people and clients type: YYYY-MM-DD only, one parser for every surface."""

from __future__ import annotations

import re
from datetime import date

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def calendar_date(value: str) -> date:
    """The date of 'YYYY-MM-DD'; ValueError for anything else.

    date.fromisoformat alone also takes week dates (2026-W46-7) and other ISO forms that
    nobody means when typing a screening date.
    """
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError(f"{str(value)[:40]!r} is not a date YYYY-MM-DD")
    return date.fromisoformat(value)
