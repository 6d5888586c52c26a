"""Conditions that name a diagnosis only in words: whole words only, and past the ones that do
not count (entered in error, refuted, coded with a mapped code)."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.conditions import uncoded_mentions
from service.engine.record import build_record
from tests.support.builders import SCT_SLE, cc, patient

NAMES = ["SLE", "systemic lupus erythematosus"]
UNLESS = ["drug-induced lupus"]
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def said(cid: str, text: str, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"},
            "code": {"text": text}, **fields}


def mentions(mappings: Any, *conditions: dict[str, Any]) -> list[str]:
    record = build_record([patient(), *conditions], mappings, "p1")
    return [c["id"] for c in uncoded_mentions(record, NAMES, UNLESS)]


@pytest.mark.parametrize(("text", "named"), [
    ("SLE", True), ("History of SLE.", True), ("sle, 2019", True),
    ("Systemic lupus erythematosus", True),
    ("Tussle", False), ("Sledding injury", False), ("measles", False),
    ("Drug-induced lupus, not SLE", False),
])
def test_a_name_counts_only_as_a_whole_word(every_study_mappings, text, named):
    assert mentions(every_study_mappings, said("c1", text)) == (["c1"] if named else [])


def test_the_conditions_that_do_not_count_are_passed_over(every_study_mappings):
    conditions = [
        said("err", "SLE", clinicalStatus=cc("active"), status="entered-in-error"),
        said("refuted", "SLE", verificationStatus=cc("refuted", VER)),
        {**said("coded", "SLE"), "code": {**cc(SCT_SLE), "text": "SLE"}},
        said("c1", "SLE"),
    ]
    assert mentions(every_study_mappings, *conditions) == ["c1"]


def coded_words(cid: str, text: str, display: str) -> dict[str, Any]:
    """A Condition with a text and one coding the mappings do not know, with its display."""
    return said(cid, text, code={"text": text, "coding": [
        {"system": "urn:oid:2.999", "code": "1", "display": display}]})


@pytest.mark.parametrize(("text", "display", "named"), [
    ("SLE", "Disorder of the immune system", True),
    ("Disorder of the immune system", "SLE", True),
    # a name is found in one text, never across the text and a display
    ("Systemic lupus", "Erythematosus", False),
    # a name that means something else counts in either text
    ("SLE", "Drug-induced lupus", False),
], ids=["in the text", "in the display", "not across the two", "unless in the display"])
def test_the_text_and_each_display_are_read_apart(every_study_mappings, text, display, named):
    assert mentions(every_study_mappings, coded_words("c1", text, display)) == (
        ["c1"] if named else [])


def test_a_display_that_is_not_text_is_passed_over(every_study_mappings):
    condition = said("c1", "SLE", code={"text": "SLE", "coding": [
        {"system": "urn:oid:2.999", "code": "1", "display": 42},
        {"system": "urn:oid:2.999", "code": "2", "display": {"text": "SLE"}}]})
    assert mentions(every_study_mappings, condition) == ["c1"]
