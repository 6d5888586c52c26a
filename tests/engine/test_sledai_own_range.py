"""A SLEDAI-2K descriptor read against the result's own reference range: which bound of which
range entry, in which unit (code, unit, else the value's own), converted with the concept's
aliases and molar mass; and a laboratory's flag only when it says high or low."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from service.engine import sledai_labs
from service.engine.record import build_record
from service.mappings import Mappings
from tests.engine.test_sledai import C3, findings_of, flagged
from tests.support.builders import AS_OF, PID, obs, patient


def c3(value: float, unit: str | None, *ranges: Any) -> dict[str, Any]:
    made = obs(C3, value, unit, oid="c3")
    if unit is None:
        made["valueQuantity"].pop("unit", None)
        made["valueQuantity"].pop("code", None)
    if ranges:
        made["referenceRange"] = list(ranges)
    return made


LOW_90 = {"low": {"value": 90, "unit": "mg/dL"}}
RANGES = [
    ("the low bound", c3(80, "mg/dL", LOW_90), True, "C3 80 mg/dL (lower limit 90)"),
    ("not below it", c3(90, "mg/dL", LOW_90), False, None),
    ("a later entry when the first has no low", c3(80, "mg/dL", {"high": {"value": 180}}, LOW_90),
     True, "C3 80 mg/dL (lower limit 90)"),
    ("past an entry that is not a table", c3(80, "mg/dL", "90-180", LOW_90), True,
     "C3 80 mg/dL (lower limit 90)"),
    ("past a bound that is not a quantity", c3(80, "mg/dL", {"low": 90}, LOW_90), True,
     "C3 80 mg/dL (lower limit 90)"),
    ("past a bound without a value", c3(80, "mg/dL", {"low": {"unit": "mg/dL"}}, LOW_90), True,
     "C3 80 mg/dL (lower limit 90)"),
    ("past a bound in a unit that does not convert",
     c3(80, "mg/dL", {"low": {"value": 1, "unit": "kg"}}, LOW_90), True,
     "C3 80 mg/dL (lower limit 90)"),
    ("the UCUM code before the unit's words",
     c3(80, "mg/dL", {"low": {"value": 90, "unit": "milligram per deciliter", "code": "mg/dL"}}),
     True, "C3 80 mg/dL (lower limit 90)"),
    ("a code in another unit, converted", c3(80, "mg/dL", {"low": {"value": 0.9, "code": "g/L"}}),
     True, "C3 80 mg/dL (lower limit 90)"),
    ("a unit in another unit, converted", c3(80, "mg/dL", {"low": {"value": 0.9, "unit": "g/L"}}),
     True, "C3 80 mg/dL (lower limit 90)"),
    ("a bound without a unit is in the value's", c3(80, "mg/dL", {"low": {"value": 90}}), True,
     "C3 80 mg/dL (lower limit 90)"),
    ("a value without a unit against a bound with one, then one without",
     c3(80, None, {"low": {"value": 0.9, "unit": "g/L"}}, {"low": {"value": 90}}), True,
     "C3 80 (lower limit 90)"),
    ("a value without a unit against a bound with one only",
     c3(80, None, {"low": {"value": 0.9, "unit": "g/L"}}), False, None),
]


@pytest.mark.parametrize(("resource", "present", "reason"), [r[1:] for r in RANGES],
                         ids=[r[0] for r in RANGES])
def test_low_complement_reads_the_results_own_lower_bound(mappings, resource, present, reason):
    found = findings_of(mappings, resource)["low-complement"]
    if present:
        assert found == sledai_labs.Finding("low-complement", True, f"{reason} on 2026-11-14",
                                            ("Observation/c3",))
    else:
        assert found == sledai_labs.Finding("low-complement", False,
                                            "not shown by 1 result(s) in the window")


def test_a_flag_that_is_not_high_or_low_flags_nothing(mappings):
    normal = findings_of(mappings, flagged(c3(80, "mg/dL"), "N"))["low-complement"]
    low = findings_of(mappings, flagged(c3(80, "mg/dL"), "L"))["low-complement"]
    assert not normal.present
    assert low.reason == "C3 80 mg/dL flagged by the laboratory on 2026-11-14"


def _with_c3(mappings: Mappings, **changes: Any) -> Mappings:
    concept = dataclasses.replace(mappings.concepts["c3"], **changes)
    return dataclasses.replace(mappings, concepts={**mappings.concepts, "c3": concept})


@pytest.mark.parametrize(("changes", "bound"), [
    ({"unit_aliases": {"mg per dL": "mg/dL"}}, {"value": 90, "unit": "mg per dL"}),
    # C3 is about 185,000 g/mol: 0.0048649 umol/L is 90 mg/dL
    ({"molar_mass": Decimal(185000)}, {"value": 4.8649, "unit": "umol/L"}),
], ids=["alias of the bound's unit", "molar mass"])
def test_the_bound_converts_with_the_concepts_aliases_and_molar_mass(mappings, changes, bound):
    site = _with_c3(mappings, **changes)
    value = c3(80, "mg/dL", {"low": bound})
    record = build_record([patient(), value], site, PID)
    found = sledai_labs.lab_findings(record, AS_OF)["low-complement"]
    assert found.present, found.reason
