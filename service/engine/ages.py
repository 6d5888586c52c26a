"""Whole-year ages from (possibly partial) FHIR birth dates."""

from __future__ import annotations

from datetime import date, timedelta


def age_range(birth: date, precision: str, as_of: date) -> tuple[int, int]:
    """Youngest and oldest whole-year age a (possibly partial) birth date allows at as_of."""
    def whole_years(born: date) -> int:
        years = as_of.year - born.year
        if (as_of.month, as_of.day) < (born.month, born.day):
            years -= 1
        return years

    if precision == "day":
        age = whole_years(birth)
        return age, age
    if precision == "month":
        last = date(birth.year + (birth.month == 12), birth.month % 12 + 1, 1) - timedelta(days=1)
        return whole_years(last), whole_years(birth)
    return whole_years(date(birth.year, 12, 31)), whole_years(date(birth.year, 1, 1))
