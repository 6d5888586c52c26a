"""Numbers as FHIR JSON writes them (numbers or numeric strings), read as Decimal."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

# No measurement, dose, count or timing is 10^30 or more of its unit, a nonzero value below
# 10^-30, or written with more than 40 significant digits: such a number is unreadable, as a
# non-finite one is. Read exactly, "1e999999" made the exact arithmetic of a dosing (fractions
# of million-digit integers) take minutes (tests/engine/test_bad_input.py).
_MAX_MAGNITUDE = 30
_MAX_DIGITS = 40
_LIMIT = 10**_MAX_MAGNITUDE


def to_decimal(value: Any) -> Decimal | None:
    """A JSON number (or numeric string) as Decimal; None for anything else, non-finite or absurd
    in magnitude."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return Decimal(value) if abs(value) < _LIMIT else None
    if isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    if not result.is_finite():
        return None
    if result.is_zero():
        # a finite zero's exponent is an int ("0E-1000000" is still zero)
        return result if int(result.as_tuple().exponent) >= -_MAX_MAGNITUDE else Decimal(0)
    if len(result.as_tuple().digits) > _MAX_DIGITS:
        return None
    return result if -_MAX_MAGNITUDE <= result.adjusted() < _MAX_MAGNITUDE else None
