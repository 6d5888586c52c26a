"""A coded result read as positive or negative from every place a record may say it."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.coded import coded_answer

V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def coding(code: str | None = None, display: str | None = None) -> dict[str, Any]:
    return {k: v for k, v in (("system", "urn:lab"), ("code", code), ("display", display)) if v}


def flag(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": V3, "code": code}]}]


CASES = [
    ("a code", {"valueCodeableConcept": {"coding": [coding("10828004")]}}, "positive"),
    ("a display", {"valueCodeableConcept": {"coding": [coding("L-77", " Positive ")]}},
     "positive"),
    ("a code then a coding that says nothing",
     {"valueCodeableConcept": {"coding": [coding("260385009"), coding("L-1", "see report")]}},
     "negative"),
    ("codings that disagree",
     {"valueCodeableConcept": {"coding": [coding("10828004"), coding("260385009")]}}, None),
    ("the concept's text", {"valueCodeableConcept": {"text": "Not detected"}}, "negative"),
    ("a string", {"valueString": " POSITIVE "}, "positive"),
    ("true", {"valueBoolean": True}, "positive"),
    ("false", {"valueBoolean": False}, "negative"),
    ("a flag", {"interpretation": flag("POS")}, "positive"),
    ("a string and a flag that disagree",
     {"valueString": "positive", "interpretation": flag("NEG")}, None),
    ("a flag and a string that agree", {"valueString": "negative", "interpretation": flag("NEG")},
     "negative"),
    ("nothing readable", {"valueString": "see comment"}, None),
]


@pytest.mark.parametrize(("resource", "answer"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_coded_answer_is_read_wherever_it_is_written(resource, answer):
    assert coded_answer({"resourceType": "Observation", **resource}) == answer
