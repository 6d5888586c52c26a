"""How one Observation's value is read, exactly: text numbers, ranges, coded answers, titers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.engine.labs import Reading, ratio_denominator, reading, titer_below, unit_of
from service.engine.model import Concept

ZWSP = "\u200b"  # a zero-width space, as some lab systems paste into result text

TEXT = [
    ("plain", "5", Reading(Decimal(5), None, None, None, True)),
    ("unit", "5.2 mg/dL", Reading(Decimal("5.2"), None, "mg/dL", None, True)),
    ("zero-width space", f"{ZWSP}5.2{ZWSP} mg/dL", Reading(Decimal("5.2"), None, "mg/dL", None,
                                                        True)),
    ("comparator", "<0.2 mg/dL", Reading(Decimal("0.2"), None, "mg/dL", "<", True)),
    ("range", "60-65", Reading(Decimal(60), Decimal(65), None, "range", True)),
    ("range with unit", "60 to 65 mL/min", Reading(Decimal(60), Decimal(65), "mL/min", "range",
                                                   True)),
    ("range of one value", "60-60", Reading(Decimal(60), Decimal(60), None, "range", True)),
    ("range backwards", "65-60", None),
    ("range with comparator", ">60-65", None),
    ("words", "see comment", None),
]


@pytest.mark.parametrize(("text", "read"), [t[1:] for t in TEXT], ids=[t[0] for t in TEXT])
def test_a_number_written_as_text_is_read_with_its_comparator_range_and_unit(text, read):
    assert reading({"valueString": text}) == read


def test_a_coded_answer_the_mapping_numbers_is_read_as_that_number():
    answers = {"http://loinc.org|LA9624-3": Decimal(2)}
    coded = {"valueCodeableConcept": {"coding": [
        {"system": "http://loinc.org", "code": "LA-other"},
        {"system": "http://loinc.org", "code": "LA9624-3"}]}}
    assert reading(coded, answers) == Reading(Decimal(2), None, None, None, False)
    assert reading({"valueCodeableConcept": {"coding": [
        {"system": "http://loinc.org", "code": "LA-other"}]}}, answers) is None


CREATININE = Concept(name="creatinine", kind="observation", codes=frozenset(), unit="mg/dL")


@pytest.mark.parametrize(("reference", "unit"), [
    ({"high": {"value": 1.2, "unit": "umol/L"}}, "umol/L"),
    ({"low": {"value": 50, "unit": "umol/L"}}, "umol/L"),
    ({"low": {"value": 50, "unit": "umol/L"}, "high": {"value": 1.2, "unit": "mg/dL"}}, "mg/dL"),
], ids=["high", "low only", "high first"])
def test_a_text_number_takes_the_unit_of_its_reference_range(reference, unit):
    resource = {"valueString": "90", "referenceRange": [reference]}
    assert unit_of(reading(resource), resource, CREATININE) == (unit, "")


TITERS = [
    ("below", "<1:40", (Decimal(40), "<1:40")),
    ("below with zero-width space", f"{ZWSP}<1:40", (Decimal(40), "<1:40")),
    ("at most", "<=1:80", (Decimal(80), "<=1:80")),
    ("with a pattern after it", "<1:80 (homogeneous)", (Decimal(80), "<1:80")),
    ("numerator not 1", "<2:80", (Decimal(40), "<2:80")),
    ("numerator 0", "<0:40", None),
    ("above", ">1:40", None),
    ("a titer", "1:40", None),
    ("negative", "Negative", (Decimal(0), "negative")),
    ("not detected", "not detected at 1:80", (Decimal(0), "negative")),
]


@pytest.mark.parametrize(("text", "below"), [t[1:] for t in TITERS], ids=[t[0] for t in TITERS])
def test_a_titer_below_a_dilution_is_read_with_its_denominator_and_words(text, below):
    assert titer_below({"valueString": text}) == below


RATIOS = [
    ("a ratio", {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 160}}},
     (Decimal(160), "1:160")),
    ("a zero denominator", {"valueRatio": {"numerator": {"value": 1},
                                           "denominator": {"value": 0}}},
     (None, "an unreadable ratio")),
    ("no denominator", {"valueRatio": {"numerator": {"value": 1}}}, (None, "an unreadable ratio")),
    ("a quantity", {"valueQuantity": {"value": 320}}, (Decimal(320), "1:320")),
    ("a text at least", {"valueString": ">1:640"}, (Decimal(640), ">1:640")),
]


@pytest.mark.parametrize(("resource", "read"), [r[1:] for r in RATIOS], ids=[r[0] for r in RATIOS])
def test_a_titer_is_read_as_its_dilution_denominator(resource, read):
    assert ratio_denominator(resource) == read
