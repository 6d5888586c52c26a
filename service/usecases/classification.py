"""The 2019 EULAR/ACR classification worksheet: read the record's items, record a classification.

`worksheet` reads the patient's record with the engine's own record read (every mapped code,
one batch) so the pre-filled items and the `sle-diagnosis` reason agree; `record` writes the
Observation `urn:trial-eligibility:score|eular-acr-2019` with its Provenance
(docs/coordinator-funnel.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from service.engine import eular_acr, eular_acr_labs
from service.engine.record import PatientRecord, build_record
from service.engine.sledai_labs import Finding
from service.fhir.confirmations import (
    Author,
    classification_observation,
    create_with_provenance,
    created_reference,
)
from service.usecases import patient_record
from service.usecases.screener import ScreeningService


@dataclass(frozen=True)
class Worksheet:
    """What the worksheet shows: the items, what the record shows of each, the labs' score."""

    domains: tuple[eular_acr.Domain, ...]
    items: tuple[eular_acr.Item, ...]
    findings: dict[str, Finding]
    entry: Finding
    lab_score: eular_acr.Classification


@dataclass(frozen=True)
class Recorded:
    """A recorded classification: where it is stored and its score."""

    reference: str
    classification: eular_acr.Classification


def read_record(screener: ScreeningService, patient_id: str) -> PatientRecord:
    """The patient's record as the engine reads it (every mapped code, one batch)."""
    resources, _ = patient_record.read_record(screener.client(), screener.mappings, patient_id)
    return build_record(resources, screener.mappings, patient_id)


def worksheet(screener: ScreeningService, patient_id: str, as_of: date) -> Worksheet:
    """The worksheet of one patient: laboratory and biopsy items pre-filled with evidence."""
    found = eular_acr_labs.findings(read_record(screener, patient_id), as_of)
    entry = found.pop(eular_acr.ENTRY)
    score = eular_acr.classify(entry.present, [k for k, f in found.items() if f.present])
    return Worksheet(eular_acr.DOMAINS, eular_acr.ITEMS, found, entry, score)


def record(
    screener: ScreeningService,
    patient_id: str,
    *,
    as_of: date,
    when: date,
    author: Author,
    entry: bool,
    present: Iterable[str],
    recorded_at: datetime,
    note: str = "",
) -> Recorded:
    """Write the classification (Observation + Provenance, one transaction).

    `present` holds the items the clinician ticked; unknown keys are refused before anything
    is written. `derivedFrom` cites the record's evidence of every ticked pre-filled item and
    of the entry criterion when it is met.
    """
    ticked = set(present)
    classification = eular_acr.classify(entry, ticked)  # ValueError on an unknown item
    found = eular_acr_labs.findings(read_record(screener, patient_id), as_of)
    derived = [ref for key in [eular_acr.ENTRY] * entry + sorted(ticked)
               if key in found and found[key].present for ref in found[key].evidence]
    resource = classification_observation(
        patient_id=patient_id, when=when, author=author, entry=entry,
        total=classification.total,
        scored=[(i.key, i.label, i.weight, i.key in ticked) for i in eular_acr.ITEMS],
        derived_from=derived, note=note)
    answer = screener.client().transaction(create_with_provenance(resource, author, recorded_at))
    return Recorded(created_reference(answer), classification)
