"""The pregnancy rule with its exact reason, value and evidence: who it applies to (sex, the
minimum age, a birth year only), the window's edge, positive, unreadable, nothing."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.results import Value
from tests.support.builders import (
    HCG_URINE,
    SCT_NEGATIVE,
    SCT_POSITIVE,
    birth_for,
    cc,
    day,
    obs,
    patient,
)

HCG = {"concept": "hcg"}
ME = ("Patient/p1",)
GIRL = patient(birth_for(14), "female")
SEARCHED = "LOINC 2106-3, 2110-5, 2112-1, 2118-8, 80384-1, 80385-8, 82810-3"
NOT_SURE = ("The sex is not recorded as female or male, so it is unknown whether a pregnancy "
            "test is needed.")


def hcg(when: str, answer: str | None = SCT_NEGATIVE, oid: str = "h1") -> dict[str, Any]:
    return obs(HCG_URINE, date=when, oid=oid,
               value_concept=cc(answer) if answer else None)


# (id, params, resources, result, reason, value, evidence)
CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], str, str, str | None,
                  tuple[str, ...]]] = [
    ("male", HCG, [patient(birth_for(14), "male"), hcg(day(5), SCT_POSITIVE)], "met",
     "Not applicable: the patient is male.", None, ME),
    ("sex-not-recorded", HCG, [patient(birth_for(14), None), hcg(day(5))], "unknown",
     NOT_SURE, None, ME),
    ("sex-other", HCG, [patient(birth_for(14), "other"), hcg(day(5))], "unknown", NOT_SURE,
     None, ME),
    ("younger-than-10", HCG, [patient(birth_for(9, 300), "female"), hcg(day(5), SCT_POSITIVE)],
     "met", "Not applicable: the patient is 9 years old (applies from 10).", None, ME),
    ("exactly-10", HCG, [patient(birth_for(10), "female"), hcg(day(5))], "met",
     f"Negative pregnancy test on {day(5)}.", "negative", ("Observation/h1",)),
    ("own-minimum", HCG | {"min_age_years": 12}, [patient(birth_for(11, 300), "female")], "met",
     "Not applicable: the patient is 11 years old (applies from 12).", None, ME),
    ("own-minimum-reached", HCG | {"min_age_years": 12}, [patient(birth_for(12), "female")],
     "unknown", f"No pregnancy test within 30 days under the codes searched ({SEARCHED}).",
     None, ()),
    # A birth year only: the oldest age it allows decides (2016: 9 or 10 years old).
    ("birth-year-may-be-10", HCG, [patient("2016", "female")], "unknown",
     f"No pregnancy test within 30 days under the codes searched ({SEARCHED}).", None, ()),
    # A full birth date: 9 years old (the year alone would allow 10).
    ("born-in-december", HCG, [patient("2016-12-01", "female"), hcg(day(5), SCT_POSITIVE)],
     "met", "Not applicable: the patient is 9 years old (applies from 10).", None, ME),
    ("birth-year-at-most-9", HCG, [patient("2017", "female")], "met",
     "Not applicable: the patient is 9 years old (applies from 10).", None, ME),
    ("birth-not-recorded", HCG, [patient(None, "female"), hcg(day(5))], "met",
     f"Negative pregnancy test on {day(5)}.", "negative", ("Observation/h1",)),
    # The window (30 days by default): its first day counts, the day before does not.
    ("on-the-first-day", HCG, [GIRL, hcg(day(30))], "met",
     f"Negative pregnancy test on {day(30)}.", "negative", ("Observation/h1",)),
    ("the-day-before", HCG, [GIRL, hcg(day(31))], "unknown",
     f"No pregnancy test within 30 days (latest on {day(31)}).", None, ("Observation/h1",)),
    ("own-window", HCG | {"window_days": 7}, [GIRL, hcg(day(8))], "unknown",
     f"No pregnancy test within 7 days (latest on {day(8)}).", None, ("Observation/h1",)),
    ("own-window-edge", HCG | {"window_days": 7}, [GIRL, hcg(day(7))], "met",
     f"Negative pregnancy test on {day(7)}.", "negative", ("Observation/h1",)),
    ("positive", HCG, [GIRL, hcg(day(5), SCT_POSITIVE)], "not-met",
     f"Positive pregnancy test on {day(5)}.", "positive", ("Observation/h1",)),
    # An unreadable newest test gives way to an older readable one; alone it is unknown.
    ("unreadable-then-negative", HCG, [GIRL, hcg(day(2), None, "h2"), hcg(day(5))], "met",
     f"Negative pregnancy test on {day(5)}.", "negative", ("Observation/h1",)),
    ("unreadable-only", HCG, [GIRL, hcg(day(2), None, "h2"), hcg(day(5), None, "h3")],
     "unknown", "The latest pregnancy test has no readable result.", None,
     ("Observation/h2",)),
    ("nothing", HCG, [GIRL], "unknown",
     f"No pregnancy test within 30 days under the codes searched ({SEARCHED}).", None, ()),
]


@pytest.mark.parametrize(("params", "resources", "expected", "reason", "value", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_pregnancy(rule_check, params, resources, expected, reason, value, evidence):
    found = rule_check("pregnancy", params, resources)
    assert (found.result, found.reason, found.evidence) == (expected, reason, evidence)
    assert found.value == (Value(value) if value is not None else None)
