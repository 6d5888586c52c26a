"""The absence rule (none of the concepts recorded) with its exact reason and evidence: active,
resolved, tentative and written-only Conditions, Procedures and Immunizations by status and
date, medication uses, nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.builders import (
    AS_OF,
    RX_CYC,
    RX_PREDNISONE,
    cc,
    condition,
    day,
    med_statement,
    obs,
)

HIV, TRANSPLANT, RITUXIMAB = "86406008", "70536003", "121191"
HIV_TX = {"concepts": ["hiv-infection", "kidney-transplant"]}
NONE_OF_THEM = "No HIV infection or kidney transplant is recorded."
NOT_PROVEN = "which does not prove the diagnosis: a clinician must confirm it."
REVIEW = "it is not missing, but a coded diagnosis or a person's review is needed."


def hiv(cid: str, text: str | None = "HIV infection", **kw: Any) -> dict[str, Any]:
    res = condition(HIV, cid=cid, **kw)
    if text:
        res["code"]["text"] = text
    return res


def written(cid: str, text: str, coding: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Condition named in words only, or under a code the mappings do not know."""
    res = condition(HIV, cid=cid)
    res["code"] = {"text": text} | ({"coding": [coding]} if coding else {})
    return res


def transplant(pid: str, when: str | None = day(100), status: str = "completed",
               rtype: str = "Procedure") -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": rtype, "id": pid, "status": status,
                           "subject": {"reference": "Patient/p1"},
                           "code": cc(TRANSPLANT) | {"text": "Kidney transplant"}}
    if when is not None:
        res["performedDateTime"] = when
    return res


def vaccine(iid: str, status: str = "completed") -> dict[str, Any]:
    return {"resourceType": "Immunization", "id": iid, "status": status,
            "patient": {"reference": "Patient/p1"}, "occurrenceDateTime": day(30),
            "vaccineCode": cc("03", "http://hl7.org/fhir/sid/cvx") | {"text": "MMR"}}


# (id, params, resources, result, reason, evidence)
CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], str, str, tuple[str, ...]]] = [
    ("nothing", HIV_TX, [], "met", NONE_OF_THEM, ()),
    ("one-concept", {"concepts": ["kidney-biopsy"]}, [], "met",
     "No kidney biopsy is recorded.", ()),
    # Conditions: active ones count (the first named, all cited), resolved ones do not.
    ("active", HIV_TX, [hiv("c1")], "not-met", "HIV infection is recorded.", ("Condition/c1",)),
    ("two-active", HIV_TX, [hiv("c1", "HIV disease", onset=day(10)),
                            hiv("c2", "HIV infection", onset=day(20))], "not-met",
     "HIV disease is recorded.", ("Condition/c1", "Condition/c2")),
    ("named-by-its-code", HIV_TX, [hiv("c1", None)], "not-met", f"Code {HIV} is recorded.",
     ("Condition/c1",)),
    ("resolved", HIV_TX, [hiv("c1", clinical="resolved")], "met", NONE_OF_THEM, ()),
    ("no-clinical-status", HIV_TX, [hiv("c1", clinical=None)], "not-met",
     "HIV infection is recorded.", ("Condition/c1",)),
    ("after-the-as-of-date", HIV_TX, [hiv("c1", onset=day(-1))], "met", NONE_OF_THEM, ()),
    ("on-the-as-of-date", HIV_TX, [hiv("c1", onset=day(0))], "not-met",
     "HIV infection is recorded.", ("Condition/c1",)),
    # Tentative: unsure, unless a confirmed one is recorded too (then only it is cited).
    ("provisional", HIV_TX, [hiv("c1", verification="provisional")], "unknown",
     f"HIV infection is recorded as provisional (Condition/c1), {NOT_PROVEN}",
     ("Condition/c1",)),
    ("confirmed-and-differential", HIV_TX,
     [hiv("c1", "HIV disease", verification="differential", onset=day(5)),
      hiv("c2", onset=day(10))], "not-met", "HIV infection is recorded.", ("Condition/c2",)),
    ("resolved-provisional", HIV_TX, [hiv("c1", verification="provisional",
                                          clinical="resolved")], "met", NONE_OF_THEM, ()),
    # Written only: not missing, so unsure.
    ("text-only", HIV_TX, [written("c9", "HIV infection since 2019")], "unknown",
     f"HIV infection since 2019 is recorded as text only (Condition/c9): {REVIEW}",
     ("Condition/c9",)),
    ("unknown-code", HIV_TX, [written("c9", "Human immunodeficiency virus",
                                      {"system": "urn:local", "code": "X1"})], "unknown",
     f"Human immunodeficiency virus is recorded under a code the mappings do not know "
     f"(Condition/c9): {REVIEW}", ("Condition/c9",)),
    # A procedure's names are not looked for in Conditions' words.
    ("procedure-written-as-a-condition", {"concepts": ["kidney-biopsy"]},
     [written("c9", "Kidney biopsy in 2020")], "met", "No kidney biopsy is recorded.", ()),
    # Procedures: done (completed, in progress, stopped, unknown), up to the as-of date or
    # undated; one recorded under two of the concepts is cited once.
    ("procedure", HIV_TX, [transplant("t1")], "not-met", "Kidney transplant is recorded.",
     ("Procedure/t1",)),
    ("procedure-in-progress", HIV_TX, [transplant("t1", status="in-progress")], "not-met",
     "Kidney transplant is recorded.", ("Procedure/t1",)),
    ("procedure-stopped", HIV_TX, [transplant("t1", status="stopped")], "not-met",
     "Kidney transplant is recorded.", ("Procedure/t1",)),
    ("procedure-unknown-status", HIV_TX, [transplant("t1", status="unknown")], "not-met",
     "Kidney transplant is recorded.", ("Procedure/t1",)),
    ("procedure-not-done", HIV_TX, [transplant("t1", status="not-done")], "met",
     NONE_OF_THEM, ()),
    ("procedure-in-preparation", HIV_TX, [transplant("t1", status="preparation")], "met",
     NONE_OF_THEM, ()),
    ("in-preparation-then-done", HIV_TX,
     [transplant("t2", day(5), "preparation"), transplant("t1")], "not-met",
     "Kidney transplant is recorded.", ("Procedure/t1",)),
    ("procedure-on-the-as-of-date", HIV_TX, [transplant("t1", day(0))], "not-met",
     "Kidney transplant is recorded.", ("Procedure/t1",)),
    ("procedure-after-the-as-of-date", HIV_TX, [transplant("t1", day(-1))], "met",
     NONE_OF_THEM, ()),
    ("later-then-done", HIV_TX, [transplant("t2", day(-1)), transplant("t1")], "not-met",
     "Kidney transplant is recorded.", ("Procedure/t1",)),
    ("procedure-undated", HIV_TX, [transplant("t1", None)], "not-met",
     "Kidney transplant is recorded.", ("Procedure/t1",)),
    ("two-procedures", HIV_TX, [transplant("t1", day(50)), transplant("t2", day(10))],
     "not-met", "Kidney transplant is recorded.", ("Procedure/t2", "Procedure/t1")),
    ("under-two-concepts", {"concepts": ["kidney-transplant", "organ-transplant-procedure"]},
     [transplant("t1")], "not-met", "Kidney transplant is recorded.", ("Procedure/t1",)),
    # An Observation under the same code is not a procedure done, and hides none.
    ("observation-then-procedure", HIV_TX,
     [obs(TRANSPLANT, system="http://snomed.info/sct", value_string="planned", date=day(5),
          oid="o1"), transplant("t1")], "not-met", "Kidney transplant is recorded.",
     ("Procedure/t1",)),
    ("a-condition-first", {"concepts": ["kidney-transplant", "hiv-infection"]},
     [hiv("c1")], "not-met", "HIV infection is recorded.", ("Condition/c1",)),
    # Immunizations: given only when completed.
    ("immunization", {"concepts": ["live-vaccine"]}, [vaccine("i1")], "not-met",
     "MMR is recorded.", ("Immunization/i1",)),
    ("immunization-not-done", {"concepts": ["live-vaccine"]}, [vaccine("i1", "not-done")],
     "met", "No live vaccine is recorded.", ()),
    # A stray `code` that is not an object does not hide the vaccine's own name.
    ("immunization-with-a-stray-code", {"concepts": ["live-vaccine"]},
     [vaccine("i1") | {"code": "MMR"}], "not-met", "MMR is recorded.", ("Immunization/i1",)),
    # A resource without a readable name is named by the rule's words.
    ("immunization-without-a-name", {"concepts": ["live-vaccine"]},
     [vaccine("i1") | {"code": "MMR", "vaccineCode": cc("03", "http://hl7.org/fhir/sid/cvx")}],
     "not-met", "Code 03 is recorded.", ("Immunization/i1",)),
    # Medication uses: of the concepts only.
    ("medication", {"concepts": ["rituximab", "cyclophosphamide", "kidney-biopsy"]},
     [med_statement(RITUXIMAB, day(60), day(30), mid="rx1"),
      med_statement(RX_CYC, day(300), day(200), mid="cy1")], "not-met",
     "Rituximab is recorded (MedicationStatement/rx1).",
     ("MedicationStatement/rx1", "MedicationStatement/cy1")),
    ("another-medication", {"concepts": ["rituximab"]},
     [med_statement(RX_PREDNISONE, day(60), day(30), mid="pr1")], "met",
     "No rituximab is recorded.", ()),
]


@pytest.mark.parametrize(("params", "resources", "expected", "reason", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_absence(rule_check, params, resources, expected, reason, evidence):
    found = rule_check("absence", params, resources, as_of=AS_OF)
    assert (found.result, found.reason, found.evidence) == (expected, reason, evidence)
    assert found.value is None


def test_an_event_naming_nothing_readable_is_named_by_its_concept(rule_check):
    unnamed = vaccine("i1") | {"code": 3, "vaccineCode": cc("03", "http://hl7.org/fhir/sid/cvx")}
    found = rule_check("event", {"concepts": ["live-vaccine"]}, [unnamed])
    assert (found.result, found.reason) == ("met",
                                            f"Live vaccine given on {day(30)} (Immunization/i1).")
