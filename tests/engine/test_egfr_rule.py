"""The egfr rule in its own words: a reported eGFR within the look-back, else bedside Schwartz
from the latest creatinine and a height near it, each way it cannot be computed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.support.builders import CREAT, EGFR, HEIGHT, birth_for, day, obs, patient

CHILD = patient(birth_for(12))
K = {"threshold": "30", "schwartz_k": "0.413"}


def o(code: str, value: Any, unit: str, days: int, oid: str, **kw: Any) -> dict[str, Any]:
    return obs(code, value, unit, day(days), oid=oid, **kw)


NO_EGFR = ("No eGFR on record under the codes searched (LOINC 33914-3, 48642-3, 48643-1, "
           "50044-7, 50384-7, 62238-1, 69405-9, 77147-7, 88293-6, 88294-4, 98979-8)")
CASES = [
    ("reported", {**K, "threshold": "90"}, [o(EGFR, 95, "mL/min/{1.73_m2}", 1, "e")], "met",
     "95", f"Reported eGFR 95 mL/min/{{1.73_m2}} on {day(1)} is at least 90.", ["e"]),
    ("reported outside the look-back, no creatinine", {**K, "lookback_days": 10},
     [o(EGFR, 95, "mL/min/{1.73_m2}", 11, "e")], "unknown", None,
     "No eGFR within 10 days (latest 95 mL/min/{1.73_m2} on " + day(11) + " is stale), and "
     "bedside Schwartz cannot be computed: no creatinine within 10 days (latest 0.5 mg/dL on "
     + day(11) + " is stale).", None),
    ("creatinine below a value", K, [o(CREAT, 0.3, "mg/dL", 5, "c", comparator="<")], "unknown",
     None, f"{NO_EGFR}, and bedside Schwartz cannot be computed: creatinine <0.3 mg/dL "
     "is not an exact positive value.", ["c"]),
    ("creatinine zero", K, [o(CREAT, 0, "mg/dL", 5, "c")], "unknown", None,
     f"{NO_EGFR}, and bedside Schwartz cannot be computed: creatinine 0 mg/dL is not "
     "an exact positive value.", ["c"]),
    ("height 180 days from the creatinine", K,
     [o(CREAT, 0.5, "mg/dL", 5, "c"), o(HEIGHT, 150, "cm", 185, "h")], "met", "123.9",
     f"Bedside Schwartz eGFR 123.9 mL/min/1.73 m2 (0.413 x height 150 cm on {day(185)} / "
     f"creatinine 0.5 mg/dL on {day(5)}) is at least 30.", ["c", "h"]),
    ("height 181 days from the creatinine", K,
     [o(CREAT, 0.5, "mg/dL", 5, "c"), o(HEIGHT, 150, "cm", 186, "h")], "unknown", None,
     f"{NO_EGFR}, and bedside Schwartz cannot be computed: no body height within 180 "
     f"days of the creatinine on {day(5)}.", ["c"]),
    ("a window of the mapping's", {**K, "height_window_days": 30},
     [o(CREAT, 0.5, "mg/dL", 5, "c"), o(HEIGHT, 150, "cm", 40, "h")], "unknown", None,
     f"{NO_EGFR}, and bedside Schwartz cannot be computed: no body height within 30 "
     f"days of the creatinine on {day(5)}.", ["c"]),
    ("the newest height outside the window, an older one inside",
     {**K, "height_window_days": 30},
     [o(CREAT, 0.5, "mg/dL", 60, "c"), o(HEIGHT, 160, "cm", 1, "h1"),
      o(HEIGHT, 150, "cm", 70, "h2")], "met", "123.9",
     f"Bedside Schwartz eGFR 123.9 mL/min/1.73 m2 (0.413 x height 150 cm on {day(70)} / "
     f"creatinine 0.5 mg/dL on {day(60)}) is at least 30.", ["c", "h2"]),
]


@pytest.mark.parametrize(("params", "resources", "outcome", "value", "reason", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_egfr_rule_says_where_its_value_comes_from(rule_check, params, resources, outcome,
                                                       value, reason, evidence):
    if "stale" in reason:  # the creatinine for the look-back case, as old as the eGFR
        resources = [*resources, o(CREAT, 0.5, "mg/dL", 11, "c")]
    found = rule_check("egfr", params, [CHILD, *resources])
    assert (found.result, found.reason) == (outcome, reason)
    assert (found.value.value if found.value else None) == (
        Decimal(value) if value is not None else None)
    if evidence is not None:
        assert list(found.evidence) == [f"Observation/{e}" for e in evidence]


def test_a_reported_egfr_is_shown_in_the_unit_the_concept_declares(every_study_mappings):
    # A site whose eGFR concept is kept in mL/min (no body-surface normalisation).
    import dataclasses

    from service.engine.evaluate import evaluate_patient
    from tests.support.builders import AS_OF, LN

    mappings = every_study_mappings
    site_egfr = dataclasses.replace(mappings.concepts["egfr"], unit="mL/min")
    site = dataclasses.replace(mappings, concepts={**mappings.concepts, "egfr": site_egfr})
    evaluation = evaluate_patient([CHILD, o(EGFR, 95, "mL/min", 1, "e")], site, AS_OF, [LN],
                                  strict=True)
    [found] = [c for c in evaluation.studies[0].criteria if c.id == "egfr"]
    assert found.reason == f"Reported eGFR 95 mL/min on {day(1)} is at least 30."


def test_the_height_read_is_the_one_chosen_not_the_newest_of_its_day(rule_check):
    # Two heights on one day, the later unreadable: the readable one is used, by itself.
    unreadable = o(HEIGHT, None, "cm", 5, "h1", value_string="tall")
    unreadable["effectiveDateTime"] = day(5) + "T20:00:00Z"
    readable = o(HEIGHT, 150, "cm", 5, "h2")
    readable["effectiveDateTime"] = day(5) + "T08:00:00Z"
    found = rule_check("egfr", K, [CHILD, o(CREAT, 0.5, "mg/dL", 5, "c"), unreadable, readable])
    assert (found.result, found.evidence) == ("met", ("Observation/c", "Observation/h2"))


def _range(low: int, high: int) -> dict[str, Any]:
    made = o(EGFR, None, "mL/min/{1.73_m2}", 1, "e")
    made["valueRange"] = {"low": {"value": low, "unit": "mL/min/{1.73_m2}"},
                          "high": {"value": high, "unit": "mL/min/{1.73_m2}"}}
    return made


@pytest.mark.parametrize(("resources", "params", "outcome", "value", "reason"), [
    ([_range(25, 35)], K, "unknown", "25",
     f"Reported eGFR 25-35 mL/min/{{1.73_m2}} on {day(1)} cannot be compared with 30."),
    ([_range(35, 45)], K, "met", "35",
     f"Reported eGFR 35-45 mL/min/{{1.73_m2}} on {day(1)} is at least 30."),
    ([o(EGFR, 95.25, "mL/min/{1.73_m2}", 1, "e")], K, "met", "95.25",
     f"Reported eGFR 95.25 mL/min/{{1.73_m2}} on {day(1)} is at least 30."),
    ([o(EGFR, 20, "mL/min/{1.73_m2}", 1, "e"),
      {"resourceType": "Condition", "id": "ln", "subject": {"reference": "Patient/p1"},
       "code": {"text": "Lupus nephritis"}}],
     {**K, "review_if": ["lupus-nephritis"]}, "unknown", "20",
     f"Reported eGFR 20 mL/min/{{1.73_m2}} on {day(1)} is below 30, but Lupus nephritis is "
     "recorded as text only (Condition/ln): the protocol makes an exception for it, so the "
     "investigator must review."),
], ids=["a range across the threshold", "a range above it", "a reported value as written",
        "an exception as text"])
def test_a_reported_egfr_in_its_exact_words(rule_check, resources, params, outcome, value, reason):
    found = rule_check("egfr", params, [CHILD, *resources])
    assert (found.result, found.reason) == (outcome, reason)
    assert found.value is not None and found.value.value == Decimal(value)
    assert list(found.evidence) == [f"{r['resourceType']}/{r['id']}" for r in resources]
