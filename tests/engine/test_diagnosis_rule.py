"""The diagnosis rule with its exact reason and evidence: active, inactive (ever or active
only), tentative, refuted, written only, excluded concepts, dates; and how a Condition is
named in a reason (text, coding display, code)."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.evaluate import evaluate_patient
from service.mappings import load_mappings
from tests.support.builders import (
    AS_OF,
    SCT_DRUG_LUPUS,
    SCT_MYOSITIS,
    SCT_SLE,
    SNOMED,
    condition,
    day,
    obs,
    patient,
)

SLE = {"concept": "sle"}
NOT_DRUG = SLE | {"exclude": ["drug-induced-lupus"]}
NOT_PROVEN = "which does not prove the diagnosis: a clinician must confirm it."
REVIEW = "it is not missing, but a coded diagnosis or a person's review is needed."
NONE = "No SLE diagnosis is recorded."
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def sle(cid: str, text: str | None = "Systemic lupus erythematosus", code: str = SCT_SLE,
        **kw: Any) -> dict[str, Any]:
    res = condition(code, cid=cid, **kw)
    if text:
        res["code"]["text"] = text
    return res


def coded(cid: str, code: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """An SLE Condition with this `code` CodeableConcept."""
    return condition(SCT_SLE, cid=cid, **kw) | {"code": code}


def written(cid: str, text: str) -> dict[str, Any]:
    return condition(SCT_SLE, cid=cid) | {"code": {"text": text}}


# (id, params, resources, result, reason, evidence)
CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], str, str, tuple[str, ...]]] = [
    ("active", SLE, [sle("c1")], "met",
     "Systemic lupus erythematosus is recorded (Condition/c1).", ("Condition/c1",)),
    # Active ones are cited (the newest named); an inactive one beside them is not.
    ("two-active-one-inactive", SLE,
     [sle("c1", "SLE (old)", onset=day(300), clinical="inactive"),
      sle("c2", "SLE", onset=day(100)), sle("c3", "Lupus", onset=day(200), clinical="relapse")],
     "met", "SLE is recorded (Condition/c2).", ("Condition/c2", "Condition/c3")),
    ("inactive", SLE, [sle("c1", clinical="inactive")], "met",
     "Systemic lupus erythematosus is recorded, though not marked active (Condition/c1).",
     ("Condition/c1",)),
    ("inactive-ever", SLE | {"clinical_status": "ever"},
     [sle("c1", onset=day(10), clinical="resolved"),
      sle("c2", "SLE", onset=day(20), clinical="remission")], "met",
     "Systemic lupus erythematosus is recorded, though not marked active (Condition/c1).",
     ("Condition/c1", "Condition/c2")),
    ("inactive-when-active-asked", SLE | {"clinical_status": "active"},
     [sle("c1", onset=day(10), clinical="resolved"),
      sle("c2", "SLE", onset=day(20), clinical="inactive")], "not-met",
     "Systemic lupus erythematosus is recorded but not active (Condition/c1); only an active "
     "diagnosis counts here.", ("Condition/c1", "Condition/c2")),
    ("active-when-active-asked", SLE | {"clinical_status": "active"}, [sle("c1")], "met",
     "Systemic lupus erythematosus is recorded (Condition/c1).", ("Condition/c1",)),
    # Tentative: unsure; a confirmed one (even inactive) decides instead.
    ("provisional", SLE, [sle("c1", verification="provisional", onset=day(10)),
                          sle("c2", "SLE?", verification="unconfirmed", onset=day(20))],
     "unknown", f"Systemic lupus erythematosus is recorded as provisional (Condition/c1), "
     f"{NOT_PROVEN}", ("Condition/c1", "Condition/c2")),
    ("two-tentative-statuses", SLE,
     [sle("c1") | {"verificationStatus": {"coding": [
         {"system": VER, "code": "unconfirmed"}, {"system": VER, "code": "differential"}]}}],
     "unknown", f"Systemic lupus erythematosus is recorded as differential (Condition/c1), "
     f"{NOT_PROVEN}", ("Condition/c1",)),
    ("provisional-and-inactive", SLE,
     [sle("c1", verification="provisional"), sle("c2", "SLE", clinical="inactive")], "met",
     "SLE is recorded, though not marked active (Condition/c2).", ("Condition/c2",)),
    ("refuted", SLE, [sle("c1", verification="refuted")], "not-met", NONE, ()),
    ("nothing", SLE, [], "not-met", NONE, ()),
    ("after-the-as-of-date", SLE, [sle("c1", onset=day(-1))], "not-met", NONE, ()),
    ("on-the-as-of-date", SLE, [sle("c1", onset=day(0))], "met",
     "Systemic lupus erythematosus is recorded (Condition/c1).", ("Condition/c1",)),
    ("an-observation-of-the-code", SLE,
     [obs(SCT_SLE, system=SNOMED, value_string="yes", oid="o1")], "not-met", NONE, ()),
    ("text-only", SLE, [written("c9", "  SLE, diagnosed 2019 ")], "unknown",
     f"SLE, diagnosed 2019 is recorded as text only (Condition/c9): {REVIEW}",
     ("Condition/c9",)),
    # Excluded concepts: a Condition under one of them does not count, and the reason says so.
    ("only-excluded", NOT_DRUG, [sle("c1", "Drug-induced lupus", SCT_DRUG_LUPUS)], "not-met",
     "Only drug-induced lupus is recorded, which does not count as SLE.", ("Condition/c1",)),
    ("excluded-and-sle", NOT_DRUG,
     [sle("c1", "Drug-induced lupus", SCT_DRUG_LUPUS), sle("c2")], "met",
     "Systemic lupus erythematosus is recorded (Condition/c2).", ("Condition/c2",)),
    ("coded-both-ways", NOT_DRUG,
     [coded("c1", {"coding": [{"system": SNOMED, "code": SCT_SLE},
                              {"system": SNOMED, "code": SCT_DRUG_LUPUS}]}),
      coded("b0", {"coding": [{"system": SNOMED, "code": SCT_DRUG_LUPUS}]})], "not-met",
     "Only drug-induced lupus is recorded, which does not count as SLE.",
     ("Condition/b0", "Condition/c1")),
    ("two-excluded-concepts", SLE | {"exclude": ["drug-induced-lupus", "myositis"]},
     [sle("c1", "Myositis", SCT_MYOSITIS)], "not-met",
     "Only drug-induced lupus or myositis is recorded, which does not count as SLE.",
     ("Condition/c1",)),
    ("written-excluded", NOT_DRUG, [written("c9", "Drug-induced lupus erythematosus")],
     "not-met", NONE, ()),
    ("written-not-excluded", SLE, [written("c9", "Drug-induced lupus erythematosus")],
     "unknown", f"Drug-induced lupus erythematosus is recorded as text only (Condition/c9): "
     f"{REVIEW}", ("Condition/c9",)),
    ("named-by-the-display", {"concept": "gilbert"}, [], "not-met",
     "No Gilbert syndrome diagnosis is recorded.", ()),
    # A concept without a display is named by its key.
    ("concept-without-display", {"concept": "ln-class-v"}, [], "not-met",
     "No ln-class-v diagnosis is recorded.", ()),
    # How a Condition is named: its text (at most 80 characters), else a coding's display,
    # else its code; blank text does not count.
    ("long-text", SLE, [sle("c1", "S" * 90)], "met", f"{'S' * 80} is recorded (Condition/c1).",
     ("Condition/c1",)),
    ("blank-text-display", SLE,
     [coded("c1", {"text": " ", "coding": [{"system": SNOMED, "code": SCT_SLE,
                                            "display": " Lupus (SLE) "}]})], "met",
     "Lupus (SLE) is recorded (Condition/c1).", ("Condition/c1",)),
    ("long-display", SLE,
     [coded("c1", {"coding": [{"system": SNOMED, "code": SCT_SLE, "display": "D" * 90}]})],
     "met", f"{'D' * 80} is recorded (Condition/c1).", ("Condition/c1",)),
    ("code-before-display", SLE,
     [coded("c1", {"coding": [{"system": SNOMED, "code": SCT_SLE},
                              {"system": "urn:x", "code": "1", "display": "Lupus"}]})],
     "met", f"Code {SCT_SLE} is recorded (Condition/c1).", ("Condition/c1",)),
    ("display-of-the-second", SLE,
     [coded("c1", {"coding": [{"system": "urn:x"},
                              {"system": SNOMED, "code": SCT_SLE, "display": "Lupus"}]})],
     "met", "Lupus is recorded (Condition/c1).", ("Condition/c1",)),
]


SHORT = """
[concepts.axsp]
kind = "condition"
codes = ["urn:test|1"]

[concepts.gouty]
kind = "condition"
codes = ["urn:test|2"]
"""
STUDY = """
[study]
key = "short-names"
title = "Concepts of short names without a display"
diagnosis_criteria = []
""" + "".join(f"""
[[criteria]]
id = "{name}"
text = "A diagnosis of {name}"
rule = "diagnosis"
concept = "{name}"
""" for name in ("axsp", "gouty"))


def test_a_short_key_without_a_display_is_written_in_capitals(tmp_path):
    (tmp_path / "short.toml").write_text(SHORT)
    (tmp_path / "study.toml").write_text(STUDY)
    mappings = load_mappings(tmp_path)
    [study] = evaluate_patient([patient()], mappings, AS_OF, ["short-names"],
                               strict=True).studies
    assert [(c.result, c.reason) for c in study.criteria] == [
        ("not-met", "No AXSP diagnosis is recorded."),   # four letters: an abbreviation
        ("not-met", "No gouty diagnosis is recorded."),  # five: a word
    ]


@pytest.mark.parametrize(("params", "resources", "expected", "reason", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_diagnosis(rule_check, params, resources, expected, reason, evidence):
    found = rule_check("diagnosis", params, resources)
    assert (found.result, found.reason, found.evidence) == (expected, reason, evidence)
    assert found.value is None
