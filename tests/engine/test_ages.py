"""Whole-year ages a (possibly partial) birth date allows, at the edges of the month and year."""

from __future__ import annotations

from datetime import date

import pytest

from service.engine.ages import age_range

CASES = [
    # (born, precision, as of, youngest, oldest)
    (date(2014, 5, 20), "day", date(2026, 5, 19), 11, 11),
    (date(2014, 5, 20), "day", date(2026, 5, 20), 12, 12),
    # born some day in May 2014: 12 on May 31 whatever the day, 11 or 12 on May 30
    (date(2014, 5, 1), "month", date(2026, 5, 31), 12, 12),
    (date(2014, 5, 1), "month", date(2026, 5, 30), 11, 12),
    (date(2014, 5, 1), "month", date(2026, 4, 30), 11, 11),
    (date(2014, 12, 1), "month", date(2026, 12, 31), 12, 12),
    (date(2014, 12, 1), "month", date(2026, 12, 30), 11, 12),
    # born some day in 2014: 11 or 12 on New Year's Day 2026, 12 only on New Year's Eve
    (date(2014, 1, 1), "year", date(2026, 1, 1), 11, 12),
    (date(2014, 1, 1), "year", date(2025, 12, 30), 10, 11),
    (date(2014, 1, 1), "year", date(2026, 12, 31), 12, 12),
]


@pytest.mark.parametrize(("born", "precision", "as_of", "youngest", "oldest"), CASES,
                         ids=[f"{c[1]}-{c[2].isoformat()}" for c in CASES])
def test_the_ages_a_birth_date_allows(born, precision, as_of, youngest, oldest):
    assert age_range(born, precision, as_of) == (youngest, oldest)
