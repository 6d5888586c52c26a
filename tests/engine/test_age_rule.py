"""The age rule in its own words: bounds on one side or both, no birth date, born today."""

from __future__ import annotations

import pytest

from tests.support.builders import AS_OF, birth_for, patient

TODAY = AS_OF.isoformat()
CASES = [
    ("at most", {"max_years": 17}, patient(birth_for(12)), "met", 12,
     f"Age 12 years on {TODAY} (required: at most 17 years)."),
    ("at least", {"min_years": 18}, patient(birth_for(12)), "not-met", 12,
     f"Age 12 years on {TODAY} is outside the required at least 18 years."),
    ("between", {"min_years": 6, "max_years": 17}, patient(birth_for(18)), "not-met", 18,
     f"Age 18 years on {TODAY} is outside the required 6-17 years."),
    ("born on the screening day", {"max_years": 17}, patient(TODAY), "met", 0,
     f"Age 0 years on {TODAY} (required: at most 17 years)."),
    ("no birth date", {"max_years": 17}, patient(None), "unknown", None,
     "No birth date on record, so the age is unknown."),
    ("born after the screening day", {"max_years": 17}, patient(birth_for(0, -1)), "unknown",
     None, "The birth date is after the screening date."),
    # a birth year alone: 11 or 12 on the screening day
    ("a year, both ages above", {"max_years": 10}, patient("2014"), "not-met", 12,
     f"Age 12 years on {TODAY} is outside the required at most 10 years."),
    ("a year, both ages below", {"min_years": 13, "max_years": 17}, patient("2014"), "not-met",
     12, f"Age 12 years on {TODAY} is outside the required 13-17 years."),
    ("a year, across the bound", {"min_years": 12}, patient("2014"), "unknown", None,
     "The birth date is partial (2014): age is 11 or 12 years, which may or may not be within "
     "at least 12 years."),
]


@pytest.mark.parametrize(("params", "person", "outcome", "years", "reason"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_age_rule_says_the_age_and_the_bounds(rule_check, params, person, outcome, years,
                                                  reason):
    found = rule_check("age", params, [person])
    assert (found.result, found.reason, found.evidence) == (outcome, reason, ("Patient/p1",))
    assert (found.value.value if found.value else None) == years
