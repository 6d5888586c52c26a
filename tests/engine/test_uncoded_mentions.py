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
