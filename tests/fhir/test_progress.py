"""The ResearchSubject's history as R5 progress entries: reasons, appending, never dropping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from service.engine.results import CriterionResult, StudyResult, Value
from service.fhir import progress
from service.fhir import research_subject as rs
from service.fhir.confirmations import Author, workflow_update

AS_OF = date(2026, 11, 15)
WHEN = datetime(2026, 11, 15, 8, 30, tzinfo=UTC)
CRITERIA = ("age", "sledai-2k", "consent")
HB_LOW = CriterionResult(id="hemoglobin", result="not-met", reason="Haemoglobin 59 g/L is low",
                         value=Value(Decimal("59"), "g/L"), evidence=("Observation/9",))
ALT_OK = CriterionResult(id="alt", result="met", reason="ALT within 3 x ULN",
                         evidence=("Observation/11",))
CONSENT = CriterionResult(id="consent", result="unknown", reason="No consent recorded")


def _study(*criteria: CriterionResult) -> StudyResult:
    return StudyResult(study="pediatric-ln-cart", title="LN", criteria=criteria)


def _build(study: StudyResult, existing=None, when: datetime = WHEN) -> dict:
    return rs.build_research_subject(study, patient_id="p1", as_of=AS_OF,
                                     research_study="ResearchStudy/s1", evaluated_at=when,
                                     existing=existing)


REASONS = [
    # (status, reason code, why, criterion, expected label or the error's words)
    ("withdrawn", "withdrawn", "family moved away", "", "Withdrawn: family moved away"),
    ("withdrawn", "family-declined", "", "", "Declined by the family"),
    ("not-registered", "clinician-declined", "", "", "Clinician declined"),
    ("not-registered", "not-approached", "  lives  abroad ", "", "Not approached: lives abroad"),
    ("not-registered", "screen-failure", "", "sledai-2k", "Screen failure: sledai-2k"),
    ("screening", "", "", "", None),                          # no reason needed to approach
    ("screening", "family-declined", "", "age", "Declined by the family"),  # criterion dropped
    ("withdrawn", "", "", "", "error: choose a reason"),             # leaving needs a reason
    ("not-registered", "", "why", "", "error: choose a reason"),
    ("off-study", "", "", "", "error: choose a reason"),
    ("withdrawn", "withdrawn", "  ", "", "error: say why"),          # withdrawn and why
    ("not-registered", "not-approached", "", "", "error: say why"),  # not approached and why
    ("not-registered", "screen-failure", "", "", "error: the criterion"),  # and the criterion
    ("not-registered", "screen-failure", "", "no-such", "error: the criterion"),
    ("withdrawn", "bored", "x", "", "error: Unknown reason"),
]


@pytest.mark.parametrize("status,code,why,criterion,expected", REASONS)
def test_workflow_reasons(status, code, why, criterion, expected):
    if expected is None:
        assert progress.reason_for(status, code, why, criterion, CRITERIA) is None
    elif not expected.startswith("error: "):
        reason = progress.reason_for(status, code, why, criterion, CRITERIA)
        assert reason is not None and reason.label == expected
    else:
        with pytest.raises(progress.ReasonError, match=expected.removeprefix("error: ")):
            progress.reason_for(status, code, why, criterion, CRITERIA)


def test_an_entry_is_the_r5_shape_and_reads_back():
    reason = progress.Reason("screen-failure", "too low", "sledai-2k")
    entry = progress.progress_entry("not-registered", WHEN, reason)
    assert entry["url"] == ("http://hl7.org/fhir/5.0/StructureDefinition/"
                            "extension-ResearchSubject.progress")
    parts = {p["url"]: p for p in entry["extension"]}
    assert set(parts) == {"type", "subjectState", "reason", "startDate"}
    assert parts["type"]["valueCodeableConcept"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/research-subject-state-type",
        "code": "Enrollment", "display": "Enrollment status"}
    assert parts["subjectState"]["valueCodeableConcept"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/research-subject-state",
        "code": "not-registered"}
    assert parts["startDate"]["valueDateTime"] == "2026-11-15T08:30:00+00:00"
    (read,) = progress.history({"extension": [entry]})
    assert (read.state, read.reason) == ("not-registered", reason)


def test_the_screening_appends_an_entry_only_when_the_computed_status_changes():
    first = _build(_study(HB_LOW, ALT_OK))
    (entry,) = progress.history(first)
    assert entry.state == "ineligible" and entry.by_screening
    assert entry.reason is not None and entry.reason.why == "not met: hemoglobin"
    stored = {**first, "id": "1", "meta": {"versionId": "1"}}
    again = _build(_study(HB_LOW, ALT_OK), stored, WHEN + timedelta(days=1))
    assert len(progress.history(again)) == 1 and rs.unchanged(again, stored)
    better = _build(_study(ALT_OK, CONSENT), stored, WHEN + timedelta(days=2))
    assert [h.state for h in progress.history(better)] == ["ineligible", "potential-candidate"]


def test_a_rescreen_never_drops_or_overwrites_a_person_s_history():
    stored = {**_build(_study(ALT_OK, CONSENT)), "id": "1", "meta": {"versionId": "3"}}
    who = Author("coord", "Coordinator")
    bundle = workflow_update(stored, "withdrawn", who, WHEN + timedelta(hours=1),
                             progress.Reason("withdrawn", "moved away"))
    withdrawn = bundle["entry"][0]["resource"]
    assert withdrawn["status"] == "withdrawn"
    assert bundle["entry"][0]["request"]["ifMatch"] == 'W/"3"'
    kept = {**withdrawn, "id": "1", "meta": {"versionId": "4"}}
    # re-screened the same, then to ineligible: the person's entry and status stay
    for study in (_study(ALT_OK, CONSENT), _study(HB_LOW, ALT_OK)):
        kept = {**_build(study, kept, WHEN + timedelta(days=1)), "id": "1"}
    states = [(h.state, h.reason.label if h.reason else "") for h in progress.history(kept)]
    assert states == [("potential-candidate", "Screened"), ("withdrawn", "Withdrawn: moved away"),
                      ("ineligible", "Screened: not met: hemoglobin")]
    assert kept["status"] == "withdrawn"
    rs.validate_research_subject(kept)
    rs.validate_with_model(kept)
