"""Confirm a manual criterion: a person's answer recorded as an Observation (or a Consent)
with a Provenance naming them, in one transaction."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from service.fhir.confirmations import (
    Author,
    confirmation_observation,
    consent_resource,
    create_with_provenance,
    created_reference,
)
from service.mappings.studies import manual_parts
from service.usecases.errors import N_, Refused
from service.usecases.screener import ScreeningService

__all__ = ["Author", "confirm_criterion", "manual_criterion", "per_study"]

log = logging.getLogger(__name__)
MAX_NOTE = 2000


def per_study(crit: Any) -> bool:
    """Whether a manual criterion is confirmed per study (the mapping says; consent always)."""
    if crit.rule == "consent":
        return True
    # The mapping's `scope` (docs/write-back.md "Recording what a person confirms"): "patient"
    # or "study".
    return crit.params.get("scope") == "study"


def manual_criterion(svc: ScreeningService, study_key: str, criterion_id: str) -> tuple[Any, Any]:
    """(study, part) of what a person confirms (a manual criterion or a criterion's manual
    part); Refused for anything else."""
    study = svc.mappings.studies.get(study_key)
    crit = next((p for c in study.criteria for p in manual_parts(c) if p.id == criterion_id),
                None) if study else None
    if study is None or crit is None:
        raise Refused(N_("Unknown study or criterion that is not confirmed by a person."))
    return study, crit


def confirm_criterion(
    svc: ScreeningService,
    *,
    author: Author,
    patient_id: str,
    study_key: str,
    criterion_id: str,
    met: bool,
    day: date,
    note: str,
    now: datetime,
) -> str:
    """Record the person's answer; the reference written. Nothing is written about a patient
    the FHIR server does not have (FhirNotFound) nor for a criterion no person confirms."""
    study, crit = manual_criterion(svc, study_key, criterion_id)
    client = svc.client()
    client.read("Patient", patient_id)
    note = note[:MAX_NOTE]
    if crit.rule == "consent":
        resource = consent_resource(patient_id=patient_id, study_key=study_key, signed=met,
                                    when=day, author=author, note=note)
    else:
        scope = (svc.research_study_refs()[study_key], study.title) if per_study(crit) else None
        resource = confirmation_observation(
            patient_id=patient_id, criterion_id=crit.id, criterion_text=crit.text,
            met=met, when=day, author=author, note=note, study=scope)
    ref = created_reference(client.transaction(create_with_provenance(resource, author, now)))
    log.info("user %s recorded %s (%s) for Patient/%s as %s", author.name, crit.id, study_key,
             patient_id, ref)
    return ref
