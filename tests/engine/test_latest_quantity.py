"""latest_quantity in its own words: which result is used (newest dated, final, on or before the
as-of date, with a number), its value in the canonical unit with what was written, and why none
is usable (no number, all later, undated, none, stale, a unit that does not convert, an
implausible value), each with the evidence it names."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from service.engine.labs import (
    fmt,
    in_window,
    label,
    latest_quantity,
    observation_value,
    reading,
    searched_codes,
)
from service.engine.record import build_record
from tests.support.builders import (
    ALT,
    AS_OF,
    ECOG,
    LOINC,
    NEUT,
    UPCR,
    birth_for,
    cc,
    day,
    obs,
    patient,
)

D = Decimal


def named(resource: dict[str, Any], rid: str) -> dict[str, Any]:
    return {**resource, "id": rid}


def neut(rid: str, value: Any = None, unit: str | None = "10*9/L", when: str | None = None,
         **kw: Any) -> dict[str, Any]:
    return named(obs(NEUT, value, unit if value is not None else None, when or day(1), **kw), rid)


def undated(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "effectiveDateTime"}


def with_quantity(resource: dict[str, Any], **fields: Any) -> dict[str, Any]:
    quantity = {k: v for k, v in {**resource["valueQuantity"], **fields}.items()
                if v is not None}
    return {**resource, "valueQuantity": quantity}


def ranged(rid: str, low: int, high: int, unit: str) -> dict[str, Any]:
    return {**neut(rid), "valueRange": {"low": {"value": low, "unit": unit},
                                        "high": {"value": high, "unit": unit}}}


NO_CODES = "no neutrophils on record under the codes searched (LOINC 26499-4, 751-8, 753-4)"
ON = date(2026, 11, 14)
USED = [
    # (id, resources, lookback, (value, comparator, when, original, high, ref))
    ("the newest final result", [neut("r1", "2", status="preliminary"), neut("r2", "3",
                                 when=day(2)), neut("r3", "4", when=day(3))], None,
     ("3", None, date(2026, 11, 13), "3 10*9/L", None, "r2")),
    ("one on the as-of date", [neut("r1", "2", when=day(0))], None,
     ("2", None, AS_OF, "2 10*9/L", None, "r1")),
    ("an older one with a number", [neut("r1"), neut("r2", "3", when=day(2))], None,
     ("3", None, date(2026, 11, 13), "3 10*9/L", None, "r2")),
    ("the UCUM code before the unit's words",
     [with_quantity(neut("r1", "2"), unit="cells per nanolitre")], None,
     ("2", None, ON, "2 10*9/L", None, "r1")),
    ("the unit's words without a code", [with_quantity(neut("r1", "2000"), code=None,
                                                       unit="/uL")], None,
     ("2", None, ON, "2000 /uL", None, "r1")),
    ("the unit's words when the code is no string",
     [with_quantity(neut("r1", "2000"), code=5, unit="/uL")], None,
     ("2", None, ON, "2000 /uL", None, "r1")),
    ("a number as text takes the usual unit", [neut("r1", value_string="2")], None,
     ("2", None, ON, "2 10*9/L (no unit given, read as the usual unit)", None, "r1")),
    ("a number as text takes its range's unit",
     [neut("r1", value_string="2000", ref_high=7000, ref_unit="/uL")], None,
     ("2", None, ON, "2000 /uL", None, "r1")),
    ("a qualified value is not checked for plausibility",
     [neut("r1", "600", comparator=">")], None, ("600", ">", ON, ">600 10*9/L", None, "r1")),
    ("at the top of the plausible range", [neut("r1", "500")], None,
     ("500", None, ON, "500 10*9/L", None, "r1")),
    ("a range converted at both ends", [ranged("r1", 2000, 3000, "/uL")], None,
     ("2", "range", ON, "2000-3000 /uL", "3", "r1")),
    ("at the end of the look-back", [neut("r1", "2", when=day(5))], 5,
     ("2", None, date(2026, 11, 10), "2 10*9/L", None, "r1")),
    ("a look-back of 0 is none", [neut("r1", "2", when=day(4000))], 0,
     ("2", None, date(2015, 12, 3), "2 10*9/L", None, "r1")),
]


@pytest.mark.parametrize(("resources", "lookback", "expected"), [c[1:] for c in USED],
                         ids=[c[0] for c in USED])
def test_the_result_used(mappings, resources, lookback, expected):
    record = build_record([patient(birth_for(30)), *resources], mappings)
    found = latest_quantity(record, mappings.concepts["neutrophils"], AS_OF, lookback)
    value, comparator, when, original, high, ref = expected
    m = found.measurement
    assert m is not None, found.problem
    assert (m.value, m.unit, m.comparator, m.when, m.original, m.high, m.ref) == (
        D(value), "10*9/L", comparator, when, original, D(high) if high else None,
        f"Observation/{ref}")
    assert (found.problem, found.evidence) == (None, (f"Observation/{ref}",))


NONE = [
    # (id, resources, concept, lookback, problem, evidence)
    ("no number", [neut("r1"), neut("r2", when=day(2))], "neutrophils", None,
     "no usable neutrophils value (result without a number)", ["r1"]),
    ("all later", [neut("r1", "2", when=day(-1)), neut("r2", "2", when=day(-2))], "neutrophils",
     None, "no neutrophils on or before 2026-11-15 (2 result(s) after that date ignored)", []),
    ("no number and one later", [neut("r1"), neut("r2", "2", when=day(-2))], "neutrophils",
     None, "no usable neutrophils value (result without a number)", ["r1"]),
    ("undated", [undated(neut("r1", "2"))], "neutrophils", None,
     "no dated neutrophils result (1 without a date)", []),
    ("later and undated", [undated(neut("r1", "2")), neut("r2", "2", when=day(-2))],
     "neutrophils", None,
     "no neutrophils on or before 2026-11-15 (1 result(s) after that date ignored)", []),
    ("not final", [neut("r1", "2", status="preliminary")], "neutrophils", None, NO_CODES, []),
    ("none", [], "neutrophils", None, NO_CODES, []),
    ("stale", [neut("r1", "2", when=day(6))], "neutrophils", 5,
     "no neutrophils within 5 days (latest 2 10*9/L on 2026-11-09 is stale)", ["r1"]),
    ("a unit that does not convert", [neut("r1", "2", "mg")], "neutrophils", None,
     "the unit of neutrophils 2 mg on 2026-11-14 cannot be converted to 10*9/L", ["r1"]),
    ("a text number without a unit, of a mass or an amount",
     [named(obs(UPCR, value_string="2", date=day(1)), "r1")], "upcr", None,
     "the unit of urine protein/creatinine ratio 2 on 2026-11-14 cannot be converted to g/g",
     ["r1"]),
    ("implausible", [neut("r1", "600")], "neutrophils", None,
     "neutrophils 600 10*9/L on 2026-11-14 is implausible (outside 0-500 10*9/L)", ["r1"]),
    ("implausible at the high end of a range", [ranged("r1", 2, 600, "10*9/L")], "neutrophils",
     None, "neutrophils 2-600 10*9/L on 2026-11-14 is implausible (outside 0-500 10*9/L)",
     ["r1"]),
]


@pytest.mark.parametrize(("resources", "concept", "lookback", "problem", "evidence"),
                         [c[1:] for c in NONE], ids=[c[0] for c in NONE])
def test_why_no_result_is_used(mappings, resources, concept, lookback, problem, evidence):
    record = build_record([patient(birth_for(30)), *resources], mappings)
    found = latest_quantity(record, mappings.concepts[concept], AS_OF, lookback)
    assert (found.measurement, found.problem) == (None, problem)
    assert list(found.evidence) == [f"Observation/{e}" for e in evidence]


@pytest.mark.parametrize(("value", "shown"), [
    ("1E+30", "1000000000000000000000000000000"),  # an integer beyond 28 digits: no quantize
    ("2.50", "2.5"), ("1.23456", "1.235"), ("120", "120"),
    ("120.0004", "120"),  # rounded to an integer: no exponent ("1.2E+2")
    # below 0.0005 a value keeps three significant digits, never "0"
    ("0.0004", "0.0004"), ("-0.0004", "-0.0004"), ("0.000123456", "0.000123"),
    ("0.0005", "0.0005"), ("0.0006", "0.001"), ("0.00000001", "0.00000001"),
])
def test_a_number_is_written_for_people(value, shown):
    assert fmt(D(value)) == shown


@pytest.mark.parametrize(("offset", "lookback", "inside"), [
    (1, 0, False), (1, 30, False), (0, 0, True), (-30, 30, True), (-31, 30, False),
    (-4000, 0, True),
])
def test_the_look_back_window_ends_at_the_as_of_date(offset, lookback, inside):
    assert in_window(AS_OF + timedelta(days=offset), AS_OF, lookback) is inside


def test_a_concept_without_a_display_is_named_by_its_words(mappings):
    assert label(mappings.concepts["ecg-normal"]) == "ecg normal"
    assert label(mappings.concepts["upcr"]) == "urine protein/creatinine ratio"


def range_of(code: str, low: int, high: int, unit: str) -> dict[str, Any]:
    return {**named(obs(code, date=day(1)), "r1"),
            "valueRange": {"low": {"value": low, "unit": unit},
                           "high": {"value": high, "unit": unit}}}


CONVERTED = [
    # (id, concept, resource, shown in the canonical unit, canonical unit, original)
    ("a coded answer the concept numbers", "ecog",
     named(obs(ECOG, value_concept=cc("LA9624-3", LOINC), date=day(1)), "r1"), "2", "1", "2"),
    ("a unit alias", "alt", named(obs(ALT, 80, "IU/L", day(1)), "r1"), "80", "U/L", "80 IU/L"),
    ("a unit alias at both ends of a range", "alt", range_of(ALT, 50, 70, "IU/L"), "50-70", "U/L",
     "50-70 IU/L"),
    ("moles through the molar mass", "upcr", named(obs(UPCR, 50, "mg/mmol", day(1)), "r1"),
     "0.442", "g/g", "50 mg/mmol"),
    ("moles through the molar mass at both ends of a range", "upcr",
     range_of(UPCR, 50, 100, "mg/mmol"), "0.442-0.884", "g/g", "50-100 mg/mmol"),
]


@pytest.mark.parametrize(("concept", "resource", "shown", "unit", "original"),
                         [c[1:] for c in CONVERTED], ids=[c[0] for c in CONVERTED])
def test_a_value_is_converted_with_the_concepts_aliases_answers_and_molar_mass(
        mappings, concept, resource, shown, unit, original):
    record = build_record([patient(birth_for(30)), resource], mappings)
    found = latest_quantity(record, mappings.concepts[concept], AS_OF)
    assert found.measurement is not None, found.problem
    assert (found.measurement.shown, found.measurement.unit, found.measurement.original) == (
        shown, unit, original)


def test_an_observations_number_with_its_unit_and_comparator():
    assert observation_value(obs(ALT, 80, "U/L", comparator="<")) == (D(80), "U/L", "<")
    assert observation_value(obs(ALT)) == (None, None, None)


def q(value: Any, unit: str | None = None) -> dict[str, Any]:
    return {"value": value, **({"unit": unit} if unit else {})}


READINGS = [
    # (id, resource, (low, high, unit, comparator, from_text) or None)
    ("a quantity with its comparator",
     {"valueQuantity": {"value": 5, "unit": "U/L", "code": "U/L", "comparator": "<"}},
     ("5", None, "U/L", "<", False)),
    ("a comparator that is no string", {"valueQuantity": {"value": 5, "comparator": 5}},
     ("5", None, None, None, False)),
    ("a quantity without a number", {"valueQuantity": {"unit": "U/L"}}, None),
    ("an integer", {"valueInteger": 3}, ("3", None, None, None, False)),
    ("an integer that is none", {"valueInteger": "abc"}, None),
    ("a range", {"valueRange": {"low": q(50, "U/L"), "high": q(70, "U/L")}},
     ("50", "70", "U/L", "range", False)),
    ("a range with the unit at its low end", {"valueRange": {"low": q(50, "U/L"), "high": q(70)}},
     ("50", "70", "U/L", "range", False)),
    ("a range with the unit at its high end", {"valueRange": {"low": q(50), "high": q(70, "U/L")}},
     ("50", "70", "U/L", "range", False)),
    ("a range of one value", {"valueRange": {"low": q(50, "U/L"), "high": q(50, "U/L")}},
     ("50", "50", "U/L", "range", False)),
    ("a range upside down", {"valueRange": {"low": q(70, "U/L"), "high": q(50, "U/L")}}, None),
    ("a range in two units", {"valueRange": {"low": q(50, "U/L"), "high": q(70, "IU/L")}}, None),
    ("a range open above", {"valueRange": {"low": q(50, "U/L")}}, ("50", None, "U/L", ">=", False)),
    ("a range open below", {"valueRange": {"high": q(70, "U/L")}},
     ("70", None, "U/L", "<=", False)),
    ("a range of nothing", {"valueRange": {}}, None),
    ("text", {"valueString": "5 U/L"}, ("5", None, "U/L", None, True)),
    ("nothing", {"valueBoolean": True}, None),
]


@pytest.mark.parametrize(("resource", "expected"), [c[1:] for c in READINGS],
                         ids=[c[0] for c in READINGS])
def test_the_number_an_observation_states(resource, expected):
    found = reading(resource)
    if expected is None:
        assert found is None
        return
    low, high, unit, comparator, from_text = expected
    assert found is not None
    assert (found.low, found.high, found.unit, found.comparator, found.from_text) == (
        D(low), D(high) if high else None, unit, comparator, from_text)


def test_the_codes_searched_are_named_by_system(mappings):
    assert searched_codes(mappings.concepts["filgrastim"]) == (
        "http://www.nlm.nih.gov/research/umls/rxnorm 338036, 68442; http://www.whocc.no/atc "
        "L03AA02, L03AA10, L03AA13")
    assert searched_codes(mappings.concepts["neutrophils"]) == "LOINC 26499-4, 751-8, 753-4"


def test_a_code_with_a_bar_in_it_is_named_whole(mappings):
    # The loader splits "system|code" at the first bar, so a code may hold one ("a|b").
    concept = replace(mappings.concepts["neutrophils"], codes=frozenset({"http://loinc.org|a|b"}))
    assert searched_codes(concept) == "LOINC a|b"
