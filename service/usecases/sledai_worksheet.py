"""Score a SLEDAI-2K worksheet: the record's lab descriptors, the score saved as a person's."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from service.engine import sledai, sledai_labs
from service.engine.record import build_record
from service.engine.sledai import DESCRIPTORS, Descriptor
from service.engine.sledai_labs import Finding
from service.fhir.confirmations import (
    Author,
    create_with_provenance,
    created_reference,
    sledai_observation,
)
from service.usecases.patient_record import read_record
from service.usecases.screener import ScreeningService

__all__ = ["DESCRIPTORS", "Descriptor", "Finding", "Worksheet", "record_score", "worksheet"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Worksheet:
    """The 24 descriptors, the lab ones the record shows, and what they alone score."""

    descriptors: tuple[Descriptor, ...]
    findings: dict[str, Finding]
    lab_total: int


def lab_findings(
    svc: ScreeningService, patient_id: str, *, as_of: date, window_days: int
) -> dict[str, Finding]:
    """The lab descriptors of the patient's record: the screening's own record read and the
    engine's own function, so the worksheet and the `sledai-2k` reason agree."""
    resources, _ = read_record(svc.client(), svc.mappings, patient_id)
    record = build_record(resources, svc.mappings, patient_id)
    return sledai_labs.lab_findings(record, as_of, window_days)


def worksheet(
    svc: ScreeningService, patient_id: str, *, as_of: date, window_days: int
) -> Worksheet:
    """The worksheet of one patient as of a date (SLEDAI_WINDOW_DAYS before it)."""
    findings = lab_findings(svc, patient_id, as_of=as_of, window_days=window_days)
    total, _ = sledai.lower_bound(findings)
    return Worksheet(DESCRIPTORS, findings, total)


def record_score(
    svc: ScreeningService,
    *,
    author: Author,
    patient_id: str,
    day: date,
    ticked: Iterable[str],
    note: str,
    as_of: date,
    window_days: int,
    now: datetime,
) -> tuple[str, int]:
    """Save the score of the ticked descriptors (Observation + Provenance, one transaction);
    (its reference, the total). Unknown descriptor keys are ignored."""
    chosen = set(ticked) & set(sledai.BY_KEY)
    findings = lab_findings(svc, patient_id, as_of=as_of, window_days=window_days)
    derived = [ref for key in sorted(chosen) if key in findings for ref in findings[key].evidence]
    scored = [(d.key, d.label, d.weight, d.key in chosen) for d in DESCRIPTORS]
    resource = sledai_observation(patient_id=patient_id, when=day, author=author, scored=scored,
                                  derived_from=derived, note=note)
    answer = svc.client().transaction(create_with_provenance(resource, author, now))
    ref = created_reference(answer)
    log.info("user %s recorded a SLEDAI-2K score for Patient/%s as %s", author.name,
             patient_id, ref)
    return ref, int(resource["valueInteger"])
