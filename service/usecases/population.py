"""Whom a population screening screens: the candidates (a coded diagnosis of a study), or
every Patient of the FHIR server."""

from __future__ import annotations

from collections.abc import Sequence

from service.fhir.candidates import candidate_ids, every_patient_id
from service.usecases.screener import ScreeningService


def population(
    svc: ScreeningService, studies: Sequence[str] | None, *, every_patient: bool, page_size: int
) -> list[str]:
    """Patient ids to screen, in the server's order (FhirFatalError when a population search
    is refused: many EHRs require `patient` on clinical searches)."""
    client = svc.client()
    if every_patient:
        return list(every_patient_id(client, page_size=page_size))
    return list(candidate_ids(client, svc.mappings, studies, page_size=page_size))
