"""The funnel and the screening and enrolment log read from ResearchSubjects (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from service.fhir import progress
from service.fhir import research_subject as rs
from service.usecases import study_funnel

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _subject(pid: str, computed: str, workflow: str | None = None,
             history: list[tuple[str, progress.Reason | None]] = (),
             criteria: dict[str, str] | None = None, consent_ref: str = "") -> dict[str, Any]:
    ext: list[dict[str, Any]] = [progress.screened_entry(computed, T0, [])]
    for day, (state, reason) in enumerate(history, start=1):
        ext.append(progress.progress_entry(state, T0 + timedelta(days=day), reason))
    ext.append({"url": rs.SCREENING_EXTENSION, "extension": [
        {"url": "status", "valueCode": computed},
        {"url": "evaluated", "valueDateTime": "2026-11-14T10:00:00+00:00"}]})
    for cid, result in (criteria or {}).items():
        parts = [{"url": "id", "valueCode": cid}, {"url": "result", "valueCode": result}]
        if cid == "consent" and consent_ref:
            parts.append({"url": "evidence", "valueReference": {"reference": consent_ref}})
        ext.append({"url": rs.CRITERION_EXTENSION, "extension": parts})
    return {"resourceType": "ResearchSubject", "status": workflow or computed,
            "individual": {"reference": f"Patient/{pid}"}, "extension": ext}


FAMILY = progress.Reason("family-declined")
MOVED = progress.Reason("withdrawn", "moved away")
SUBJECTS = [
    _subject("a", "ineligible", criteria={"age": "not-met", "sledai-2k": "not-met"}),
    _subject("b", "potential-candidate"),
    _subject("c", "eligible"),
    _subject("d", "eligible", "not-registered", [("not-registered", FAMILY)]),
    _subject("e", "eligible", "screening", [("screening", None)]),
    # consented (signed Consent), then withdrawn with a reason: still counts as consented
    _subject("f", "eligible", "withdrawn", [("screening", None), ("withdrawn", MOVED)],
             {"consent": "met"}, "Consent/f1"),
    _subject("g", "eligible", "on-study", [("screening", None), ("pending-on-study", None),
                                           ("on-study", None)], {"consent": "met"}),
    _subject("h", "ineligible", "withdrawn", [("withdrawn", None)]),  # no reason recorded
    # a signed consent but ineligible by the record: counted where the screening places them
    _subject("i", "ineligible", criteria={"consent": "met", "age": "not-met"}),
    # a consent signed before the screening tests: a candidate, not yet eligible nor consented
    _subject("j", "potential-candidate", criteria={"consent": "met", "sledai-2k": "unknown"}),
]


def test_the_funnel_counts_every_stage_reached_and_who_left_why():
    lines = [study_funnel.log_line(s) for s in SUBJECTS]
    f = study_funnel.funnel(lines)
    assert f.stages == (("screened", 10), ("candidate", 7), ("eligible", 5), ("approached", 3),
                        ("consented", 2), ("on study", 1))
    assert f.left == (("consented", "Withdrawn: moved away", 1),
                      ("eligible", "Declined by the family", 1),
                      ("screened", "Not eligible: age", 1),
                      ("screened", "Not eligible: age, sledai-2k", 1),
                      ("screened", "withdrawn (no reason recorded)", 1))


def test_the_log_columns_of_a_screening_and_enrolment_log():
    by = {line.patient_id: line for line in (study_funnel.log_line(s) for s in SUBJECTS)}
    g = by["g"]
    assert (g.date_screened, g.eligible, g.consent_date, g.enrolment_date) == (
        "2026-11-01", True, "2026-11-03", "2026-11-04")
    assert by["a"].reason == "Not eligible: age, sledai-2k" and not by["a"].eligible
    f = by["f"]
    assert f.consent_refs == ("Consent/f1",) and f.consent_date == ""
    (dated,) = [x for x in study_funnel.with_consent_dates(
        [f], {"Consent/f1": {"resourceType": "Consent", "dateTime": "2026-11-02"}})]
    assert dated.consent_date == "2026-11-02"
