"""Test ids in ASCII: pytest writes other characters as escapes (`\\xb5L`), which tools that
select tests by id again (mutmut) cannot match. µ, ≥ and the like get readable stand-ins."""

from __future__ import annotations

_STAND_INS = {"µ": "u", "μ": "u", "≥": ">=", "≤": "<=", "×": "x", "°": "deg", "–": "-"}


def ascii_id(text: str) -> str:
    """`text` with every non-ASCII character replaced by a stand-in or its code point."""
    return "".join(c if c.isascii() else _STAND_INS.get(c, f"U{ord(c):04X}") for c in text)
