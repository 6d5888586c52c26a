"""normal-limit in its own words: each side, a multiple or none, a bound it cannot compare with,
no limit known, the age/sex table and a look-back, with the value and evidence it decided on."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.engine.test_measurement_rules import lab
from tests.support.builders import ALT, birth_for, day, obs, patient

C3 = "4485-9"  # LOINC complement C3 (mappings/concepts.toml)
ON = day(1)  # 2026-11-14


def named(resource: dict[str, Any], rid: str = "r1") -> dict[str, Any]:
    return {**resource, "id": rid}


def alt_range(low: int, high: int) -> dict[str, Any]:
    made = obs(ALT)
    made["valueRange"] = {"low": {"value": low, "unit": "U/L"},
                          "high": {"value": high, "unit": "U/L"}}
    made["referenceRange"] = [{"high": {"value": 40, "unit": "U/L"}}]
    return named(made)


FROM_RANGE = "from reference range of Observation/r1"
CASES = [
    ("high, 2 x ULN, met at the bound", {"limit": "high", "operator": "<=", "multiple": "2"},
     [named(lab(ALT, 80, "U/L", high=40))], "met", "80",
     f"ALT 80 U/L on 2026-11-14 (ULN 40 U/L {FROM_RANGE}) is at most 2 x ULN."),
    ("high, ULN itself, not met", {"limit": "high", "operator": "<="},
     [named(lab(ALT, 41, "U/L", high=40))], "not-met", "41",
     f"ALT 41 U/L on 2026-11-14 (ULN 40 U/L {FROM_RANGE}) is above ULN."),
    ("high, a half, met", {"limit": "high", "operator": "<", "multiple": "0.5"},
     [named(lab(ALT, 19, "U/L", high=40))], "met", "19",
     f"ALT 19 U/L on 2026-11-14 (ULN 40 U/L {FROM_RANGE}) is below 0.5 x ULN."),
    ("high, above a value under the bound", {"limit": "high", "operator": "<=", "multiple": "2"},
     [named(lab(ALT, 70, "U/L", comparator=">", high=40))], "unknown", "70",
     f"ALT >70 U/L on 2026-11-14 (ULN 40 U/L {FROM_RANGE}) cannot be compared with 2 x ULN."),
    ("high, a range across the bound", {"limit": "high", "operator": "<=", "multiple": "2"},
     [alt_range(70, 90)], "unknown", "70",
     f"ALT 70-90 U/L on 2026-11-14 (ULN 40 U/L {FROM_RANGE}) cannot be compared with 2 x ULN."),
    ("high, a range under the bound", {"limit": "high", "operator": "<=", "multiple": "2"},
     [alt_range(60, 80)], "met", "60",
     f"ALT 60-80 U/L on 2026-11-14 (ULN 40 U/L {FROM_RANGE}) is at most 2 x ULN."),
    ("low, met", {"concept": "c3", "limit": "low", "operator": "<"},
     [named(lab(C3, 80, "mg/dL", low=90))], "met", "80",
     f"C3 80 mg/dL on 2026-11-14 (LLN 90 mg/dL {FROM_RANGE}) is below LLN."),
    ("low, not met", {"concept": "c3", "limit": "low", "operator": "<"},
     [named(lab(C3, 90, "mg/dL", low=90))], "not-met", "90",
     f"C3 90 mg/dL on 2026-11-14 (LLN 90 mg/dL {FROM_RANGE}) is not below LLN."),
    ("low, no lower limit", {"concept": "c3", "limit": "low", "operator": "<"},
     [named(lab(C3, 80, "mg/dL", high=180))], "unknown", "80",
     "C3 80 mg/dL on 2026-11-14 has no lower limit of normal: no reference range low on the "
     "result and no table of lower limits for it."),
    ("high, no upper limit for an adult", {"concept": "c3", "limit": "high", "operator": "<"},
     [named(lab(C3, 80, "mg/dL", low=90))], "unknown", "80",
     "C3 80 mg/dL on 2026-11-14 has no upper limit of normal: no reference range on the result "
     "and the age/sex table has no row for age 29 years."),
    ("high, look-back", {"limit": "high", "operator": "<=", "lookback_days": 10},
     [named(lab(ALT, 30, "U/L", day(11), high=40))], "unknown", None,
     "No ALT within 10 days (latest 30 U/L on 2026-11-04 is stale)."),
    ("high, inside the look-back", {"limit": "high", "operator": "<=", "lookback_days": 11},
     [named(lab(ALT, 30, "U/L", day(11), high=40))], "met", "30",
     f"ALT 30 U/L on 2026-11-04 (ULN 40 U/L {FROM_RANGE}) is at most ULN."),
]


@pytest.mark.parametrize(("params", "resources", "outcome", "value", "reason"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_normal_limit_says_which_limit_it_compared_with(rule_check, params, resources, outcome,
                                                        value, reason):
    found = rule_check("normal-limit", {"concept": "alt", **params}, resources)
    assert (found.result, found.reason) == (outcome, reason)
    assert (found.value.value if found.value else None) == (
        Decimal(value) if value is not None else None)
    assert list(found.evidence) == ["Observation/r1"]


def test_a_childs_upper_limit_comes_from_the_age_and_sex_table(rule_check):
    child = patient(birth_for(12), "female")
    found = rule_check("normal-limit", {"concept": "alt", "limit": "high", "operator": "<="},
                       [child, named(lab(ALT, 50, "U/L"))])
    assert (found.result, found.reason) == (
        "not-met", "ALT 50 U/L on 2026-11-14 (ULN 25 U/L from CALIPER pediatric table "
        "(ALT (no P5P), both sexes, age 1 to <13 years: 25 U/L)) is above ULN.")
    assert list(found.evidence) == ["Observation/r1"]
