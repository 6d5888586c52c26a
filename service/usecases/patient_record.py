"""Reading one patient's clinical record: every resource the mappings need, only this patient's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from service.fhir.api import FhirApi
from service.fhir.queries import normalize_patient_id, record_queries
from service.fhir.record_read import record_resources
from service.mappings import Mappings


def record_of(
    client: FhirApi, results: Mapping[str, list[dict[str, Any]]], patient_id: str
) -> list[dict[str, Any]]:
    """The record in run_queries' results: Patient first, each resource once, only about
    this patient (relative, or absolute on the client's FHIR base)."""
    return record_resources(results, patient_id, client.base_url)


def read_record(
    client: FhirApi,
    mappings: Mappings,
    patient_id: str,
    *,
    research_subject_studies: Sequence[str] = (),
    research_study_keys: Sequence[str] = (),
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """(record, results): one record read (<= 2 requests unpaged) for screening and worksheets.

    With research_subject_studies / research_study_keys the same batch also fetches the
    patient's stored ResearchSubjects and the ResearchStudies (the screening's write-back).
    """
    return read_record_of_codes(
        client, patient_id, mappings.observation_codes(),
        research_subject_studies=research_subject_studies,
        research_study_keys=research_study_keys,
    )


def read_record_of_codes(
    client: FhirApi,
    patient_id: str,
    observation_codes: Iterable[str],
    *,
    research_subject_studies: Sequence[str] = (),
    research_study_keys: Sequence[str] = (),
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """read_record for these Observation codes (the mappings' codes, or a test's)."""
    pid = normalize_patient_id(patient_id)
    queries = record_queries(
        pid, observation_codes, page_size=client.page_size,
        research_subject_studies=research_subject_studies,
        research_study_keys=research_study_keys,
    )
    results = client.run_queries(queries)
    return record_of(client, results, pid), results
