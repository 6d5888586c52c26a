"""Set a study's workflow status on a patient's ResearchSubject: a person's decision, written
with If-Match on the version they saw, so a change made meanwhile is never overwritten."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from service.fhir import progress
from service.fhir import research_subject as rs
from service.fhir.confirmations import Author, workflow_update
from service.fhir.errors import FhirError
from service.usecases.errors import N_, Refused, StaleRecord
from service.usecases.patient_view import stored_subjects
from service.usecases.screener import ScreeningService

WORKFLOW_STATUSES = rs.WORKFLOW_STATUSES
REASONS = progress.REASONS  # the reasons a person gives for a workflow change
Reason = progress.Reason
ReasonError = progress.ReasonError  # a reason that cannot be recorded as given
history = progress.history  # a stored ResearchSubject's progress entries, for the page
COMPUTED = "computed"  # the person clears theirs: the screening's status shows again

log = logging.getLogger(__name__)


def subject_for(
    svc: ScreeningService, patient_id: str, study_key: str
) -> Mapping[str, Any] | None:
    """The patient's stored ResearchSubject of one study (found by our identifier), or None."""
    value = rs.research_subject_identifier_value(study_key, patient_id)
    subjects, _ = stored_subjects(svc, patient_id)
    return next((r for r in subjects
                 if rs.has_identifier(r, rs.RESEARCH_SUBJECT_SYSTEM, value)), None)


def set_workflow_status(
    svc: ScreeningService,
    *,
    author: Author,
    patient_id: str,
    study_key: str,
    status: str,
    seen_version: str,
    now: datetime,
    reason: str = "",
    why: str = "",
    criterion: str = "",
) -> tuple[str, Reason | None]:
    """Set the status ("computed" clears the person's) with the person's reason (code, words,
    the criterion of a screen failure); the status stored and the reason recorded.

    Refused for an unknown study or status, a form without the version it was made from, or
    a patient not screened yet; StaleRecord when the ResearchSubject changed since that
    version (nothing written); ReasonError when the reason is missing or incomplete.
    """
    if study_key not in svc.mappings.studies:
        raise Refused(N_("Unknown study."))
    # A person sets a workflow status or clears theirs ("computed"); the computed statuses
    # (eligible, ...) are the screening's, never stored as a person's decision.
    if status not in WORKFLOW_STATUSES and status != COMPUTED:
        raise Refused(N_("Unknown workflow status."))
    if not seen_version:
        raise Refused(N_("The form does not say which version of the record it changes: reload "
                      "the page and try again."))
    subject = subject_for(svc, patient_id, study_key)
    if subject is None:
        raise Refused(N_("Screen the patient before setting a workflow status."))
    if seen_version != (subject.get("meta") or {}).get("versionId"):
        raise StaleRecord(subject)  # the record changed since the page was shown
    if status == COMPUTED:
        status = rs.computed_status(subject) or ""
    criteria = [c.id for c in svc.mappings.studies[study_key].criteria]
    given = progress.reason_for(status, reason, why, criterion, criteria)
    try:
        # If-Match carries the version the person saw, not one read during this request.
        seen = {**subject, "meta": {**(subject.get("meta") or {}), "versionId": seen_version}}
        svc.client().transaction(workflow_update(seen, status, author, now, given))
    except FhirError as exc:
        if getattr(exc, "status", None) in (409, 412):
            raise StaleRecord(subject_for(svc, patient_id, study_key) or subject) from None
        raise
    log.info("user %s set %s workflow status of Patient/%s to %s (%s)", author.name, study_key,
             patient_id, status, given.code if given else "no reason")
    return status, given
