"""The enrolled-elsewhere rule with its exact reason and evidence: which ResearchSubjects count
(another study, a wanted status) and which are this service's own for the study screened."""

from __future__ import annotations

from typing import Any

import pytest

SYSTEM = "urn:trial-eligibility:research-subject"
PARAMS = {"statuses": ["on-study", "on-study-intervention"]}


def subject(sid: str, status: str = "on-study", study: str | None = "ResearchStudy/other",
            identifiers: list[Any] | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "ResearchSubject", "id": sid, "status": status,
                           "individual": {"reference": "Patient/p1"}}
    if study:
        res["study"] = {"reference": study}
    if identifiers is not None:
        res["identifier"] = identifiers
    return res


NONE = ("No ResearchSubject of this patient in another study has status on-study, "
        "on-study-intervention.")

CASES = [
    ("on-study-elsewhere", [subject("rs1")], "met",
     "The patient is on-study in ResearchStudy/other (ResearchSubject/rs1).",
     ("ResearchSubject/rs1",)),
    ("no-study-named", [subject("rs1", "on-study-intervention", study=None)], "met",
     "The patient is on-study-intervention in another study (ResearchSubject/rs1).",
     ("ResearchSubject/rs1",)),
    ("two-count", [subject("rs1"), subject("rs2", study="ResearchStudy/third")], "met",
     "The patient is on-study in ResearchStudy/other (ResearchSubject/rs1).",
     ("ResearchSubject/rs1", "ResearchSubject/rs2")),
    ("status-not-wanted", [subject("rs1", "off-study")], "not-met", NONE, ()),
    # This service's own ResearchSubject for the study screened ("test": rule_check's study).
    ("this-services-own", [subject("rs1", identifiers=[{"system": SYSTEM, "value": "test/p1"}])],
     "not-met", NONE, ()),
    # Its own for another study, or another system's identifier of the same value: elsewhere.
    ("own-for-another-study",
     [subject("rs1", identifiers=["not a table", {"system": SYSTEM, "value": "other/p1"}])],
     "met", "The patient is on-study in ResearchStudy/other (ResearchSubject/rs1).",
     ("ResearchSubject/rs1",)),
    ("other-system-same-value",
     [subject("rs1", identifiers=[{"system": "urn:other", "value": "test/p1"}])],
     "met", "The patient is on-study in ResearchStudy/other (ResearchSubject/rs1).",
     ("ResearchSubject/rs1",)),
    ("nothing", [], "not-met", NONE, ()),
]


@pytest.mark.parametrize(("resources", "expected", "reason", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_enrolled_elsewhere(rule_check, resources, expected, reason, evidence):
    found = rule_check("enrolled-elsewhere", PARAMS, resources)
    assert (found.result, found.reason, found.evidence) == (expected, reason, evidence)
