"""The event rule (a diagnosis, procedure, medication use or vaccination within N days, or
ever) with its exact reason and evidence: inside the window, at its edge, unsure, absent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.builders import (
    AS_OF,
    cc,
    condition,
    day,
    med_request,
    med_statement,
    procedure,
)

CVX = "http://hl7.org/fhir/sid/cvx"
CTCAE = "http://hl7.org/fhir/us/ctcae/CodeSystem/ctcae-grade-code-system"
HIV, PE = "86406008", "59282003"          # SNOMED HIV infection, pulmonary embolism
PLASMAPHERESIS, RITUXIMAB = "36514", "121191"
SINCE = day(28)                           # the window's first day: 28 days before AS_OF


def vaccine(when: str | None, iid: str = "imm1", code: str = "03") -> dict[str, Any]:
    res = {"resourceType": "Immunization", "id": iid, "status": "completed",
           "patient": {"reference": "Patient/p1"}, "vaccineCode": cc(code, CVX)}
    if when:
        res["occurrenceDateTime"] = when
    return res


def graded(code: str, grade: int | None, cid: str, *, onset: str = day(5),
           where: str = "severity") -> dict[str, Any]:
    res = condition(code, onset=onset, cid=cid)
    if grade is not None:
        coding = cc(str(grade), CTCAE)
        if where == "severity":
            res["severity"] = coding
        else:
            res["stage"] = [{"summary": coding}]
    return res


def plasmapheresis(when: str | None, pid: str) -> dict[str, Any]:
    return procedure(PLASMAPHERESIS, when, pid=pid) | {
        "code": cc(PLASMAPHERESIS, "http://www.ama-assn.org/go/cpt")}


W28 = f" in the 28 days before {AS_OF.isoformat()}"

# (id, params, resources, result, reason, evidence)
CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], str, str, tuple[str, ...]]] = [
    ("vaccine-on-the-first-day", {"concepts": ["live-vaccine"], "within_days": 28},
     [vaccine(SINCE)], "met", f"Live vaccine given on {SINCE} (Immunization/imm1){W28}.",
     ("Immunization/imm1",)),
    ("vaccine-the-day-before", {"concepts": ["live-vaccine"], "within_days": 28},
     [vaccine(day(29))], "not-met",
     f"No live vaccine is recorded{W28} (the latest, Immunization/imm1, is older).",
     ("Immunization/imm1",)),
    ("vaccine-undated", {"concepts": ["live-vaccine"], "within_days": 28},
     [vaccine(None)], "unknown",
     f"Live vaccine is recorded (Immunization/imm1), but its date does not show whether it "
     f"falls{W28}.", ("Immunization/imm1",)),
    ("vaccine-undated-ever", {"concepts": ["live-vaccine"]},
     [vaccine(None)], "met", "Live vaccine given (undated) (Immunization/imm1).",
     ("Immunization/imm1",)),
    ("nothing", {"concepts": ["live-vaccine", "plasmapheresis"], "within_days": 28}, [],
     "not-met", f"No live vaccine or plasmapheresis is recorded{W28}.", ()),
    # The newest of several inside the window names the reason; all of them are evidence.
    ("newest-first", {"concepts": ["live-vaccine", "plasmapheresis"], "within_days": 28},
     [vaccine(day(20)), plasmapheresis(day(3), "pp1"), vaccine(day(40), "imm2")], "met",
     f"Plasmapheresis performed on {day(3)} (Procedure/pp1){W28}.",
     ("Procedure/pp1", "Immunization/imm1")),
    ("older-ones-name-the-latest", {"concepts": ["live-vaccine"], "within_days": 28},
     [vaccine(day(90), "imm1"), vaccine(day(40), "imm2")], "not-met",
     f"No live vaccine is recorded{W28} (the latest, Immunization/imm2, is older).",
     ("Immunization/imm2",)),
    # A month recorded without its day stands for the whole month: it reaches into the window.
    ("partial-date-reaches-in", {"concepts": ["live-vaccine"], "within_days": 28},
     [vaccine(SINCE[:7])], "met",
     f"Live vaccine given on {SINCE[:7]}-01 (Immunization/imm1){W28}.", ("Immunization/imm1",)),
    # A medication use overlapping the window counts; one of unknown end may reach into it.
    ("use-overlapping", {"concepts": ["rituximab"], "within_days": 28},
     [med_statement(RITUXIMAB, day(60), day(20), mid="rx1")], "met",
     f"Rituximab taken on {day(60)} (MedicationStatement/rx1){W28}.",
     ("MedicationStatement/rx1",)),
    ("use-open-ended-before", {"concepts": ["rituximab"], "within_days": 28},
     [med_request(RITUXIMAB, day(60), mid="rx1", status="completed")], "unknown",
     f"Rituximab is recorded (MedicationRequest/rx1), but its date does not show whether it "
     f"falls{W28}.", ("MedicationRequest/rx1",)),
    # Conditions: tentative ones prove nothing; only an active one when `active` is asked.
    ("tentative", {"concepts": ["hiv-infection"]},
     [condition(HIV, verification="provisional", cid="c1", onset=day(5))], "unknown",
     "HIV infection is recorded (Condition/c1), but it is recorded as tentative "
     "(provisional, differential or unconfirmed).", ("Condition/c1",)),
    ("tentative-before-the-window", {"concepts": ["hiv-infection"], "within_days": 28},
     [condition(HIV, verification="provisional", cid="c1", onset=day(40))], "not-met",
     f"No HIV infection is recorded{W28} (the latest, Condition/c1, is older).",
     ("Condition/c1",)),
    ("resolved-when-active-asked", {"concepts": ["hiv-infection"], "clinical_status": "active"},
     [condition(HIV, clinical="resolved", cid="c1", onset=day(5))], "not-met",
     "No HIV infection is recorded.", ()),
    ("resolved-ever", {"concepts": ["hiv-infection"], "clinical_status": "ever"},
     [condition(HIV, clinical="resolved", cid="c1", onset=day(5))], "met",
     f"HIV infection recorded on {day(5)} (Condition/c1).", ("Condition/c1",)),
    # Graded: at or above the minimum counts, below does not, without a grade is unknown.
    ("grade-at-minimum", {"concepts": ["thromboembolism"], "grade": "ctcae-grade",
                          "min_grade": "2"},
     [graded(PE, 2, "pe1")], "met", f"Thromboembolic event recorded on {day(5)} (Condition/pe1).",
     ("Condition/pe1",)),
    ("grade-in-stage", {"concepts": ["thromboembolism"], "grade": "ctcae-grade",
                        "min_grade": "3"},
     [graded(PE, 3, "pe1", where="stage")], "met",
     f"Thromboembolic event recorded on {day(5)} (Condition/pe1).", ("Condition/pe1",)),
    ("grade-below", {"concepts": ["thromboembolism"], "grade": "ctcae-grade", "min_grade": "2"},
     [graded(PE, 1, "pe1")], "not-met", "No thromboembolic event is recorded.", ()),
    ("ungraded", {"concepts": ["thromboembolism"], "grade": "ctcae-grade", "min_grade": "2"},
     [graded(PE, None, "pe1")], "unknown",
     "Thromboembolic event is recorded (Condition/pe1), but its grade is not recorded "
     "(grade 2 or higher counts).", ("Condition/pe1",)),
    ("ungraded-before-window", {"concepts": ["thromboembolism"], "grade": "ctcae-grade",
                                "min_grade": "2", "within_days": 28},
     [graded(PE, None, "pe1", onset=day(40))], "not-met",
     f"No thromboembolic event is recorded{W28} (the latest, Condition/pe1, is older).",
     ("Condition/pe1",)),
    # A resolved Condition (or one graded below the minimum) listed first does not hide an
    # active (or graded) one after it.
    ("resolved-then-active", {"concepts": ["hiv-infection"], "clinical_status": "active"},
     [condition(HIV, clinical="resolved", cid="c1", onset=day(3)),
      condition(HIV, cid="c2", onset=day(5))], "met",
     f"HIV infection recorded on {day(5)} (Condition/c2).", ("Condition/c2",)),
    ("graded-below-then-above", {"concepts": ["thromboembolism"], "grade": "ctcae-grade",
                                 "min_grade": "2"},
     [graded(PE, 1, "pe1", onset=day(3)), graded(PE, 2, "pe2")], "met",
     f"Thromboembolic event recorded on {day(5)} (Condition/pe2).", ("Condition/pe2",)),
    # Tentative on the window's first day: inside, so unsure rather than too old.
    ("tentative-on-the-first-day", {"concepts": ["hiv-infection"], "within_days": 28},
     [condition(HIV, verification="provisional", cid="c1", onset=SINCE)], "unknown",
     "HIV infection is recorded (Condition/c1), but it is recorded as tentative "
     "(provisional, differential or unconfirmed).", ("Condition/c1",)),
    # Graded and undated: what is unsure is its date, not its grade.
    ("graded-undated", {"concepts": ["thromboembolism"], "grade": "ctcae-grade",
                        "min_grade": "2", "within_days": 28},
     [graded(PE, 3, "pe1", onset="")], "unknown",
     f"Thromboembolic event is recorded (Condition/pe1), but its date does not show whether "
     f"it falls{W28}.", ("Condition/pe1",)),
    # The reason names the event that ended most recently: a long use ending yesterday before
    # a vaccination ten days ago; a use of unknown end that started after it before it.
    ("long-use-ending-recently", {"concepts": ["live-vaccine", "rituximab"], "within_days": 28},
     [vaccine(day(10)), med_statement(RITUXIMAB, day(100), day(1), mid="rx1")], "met",
     f"Rituximab taken on {day(100)} (MedicationStatement/rx1){W28}.",
     ("MedicationStatement/rx1", "Immunization/imm1")),
    ("open-use-started-last", {"concepts": ["live-vaccine", "rituximab"], "within_days": 28},
     [vaccine(day(20)), med_statement(RITUXIMAB, day(10), mid="rx1")], "met",
     f"Rituximab taken on {day(10)} (MedicationStatement/rx1){W28}.",
     ("MedicationStatement/rx1", "Immunization/imm1")),
]


@pytest.mark.parametrize(("params", "resources", "expected", "reason", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_event(rule_check, params, resources, expected, reason, evidence):
    found = rule_check("event", params, resources)
    assert (found.result, found.reason, found.evidence) == (expected, reason, evidence)
    assert found.value is None
