"""The searches that read a patient's whole relevant record in one batch Bundle (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

from service.fhir.ids import FHIR_ID, normalize_patient_id
from service.fhir.research_subject import (
    RESEARCH_SUBJECT_SYSTEM,
    STUDY_SYSTEM,
    research_subject_identifier_value,
)

# Clinical resource types read for every patient, with the reference each one's medication
# lives in (so the referenced Medication comes back in the same answer via _include).
_MEDICATION_INCLUDES = {
    "MedicationRequest": "MedicationRequest:medication",
    "MedicationStatement": "MedicationStatement:medication",
    "MedicationAdministration": "MedicationAdministration:medication",
}
RECORD_TYPES: tuple[str, ...] = (
    "Observation",
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "MedicationAdministration",
    "Procedure",
    "AllergyIntolerance",
    "Consent",
    # Pathology reports carry the biopsy's conclusion and date (ln-biopsy).
    "DiagnosticReport",
    # Vaccinations (e.g. a live vaccine within 28 days as an exclusion).
    "Immunization",
)
# This patient's ResearchSubjects in every study, read as part of the record (enrolment in
# another study as a criterion); apart from the write-back state labelled "ResearchSubject".
ENROLMENT_LABEL = "Enrolment"


@dataclass(frozen=True)
class Query:
    """One entry of the read batch: what it is for and its URL relative to the FHIR base."""

    label: str
    url: str


def _escape_token(value: str) -> str:
    # FHIR search escaping: '\', ',' and '$' inside a value would otherwise split it.
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("$", "\\$")


def code_token(code: str) -> str:
    """A mapping code 'system|code' as a token search value; 'system|*' means any code."""
    system, sep, value = code.rpartition("|")
    if not sep:
        return _escape_token(code)
    if value == "*":
        # FHIR token search "[system]|" matches every code of that system.
        return f"{_escape_token(system)}|"
    return f"{_escape_token(system)}|{_escape_token(value)}"


def query_string(params: Sequence[tuple[str, str]]) -> str:
    """URL query of search parameters, FHIR syntax characters (',', '|', ':') kept readable."""
    return urlencode(list(params), quote_via=quote, safe=",|:/\\")


def search_url(resource_type: str, params: Sequence[tuple[str, str]]) -> str:
    """A relative search URL such as 'Observation?patient=1&_count=500'."""
    return f"{resource_type}?{query_string(params)}"


@lru_cache(maxsize=16)
def _search_tails(observation_codes: tuple[str, ...], page_size: int
                  ) -> tuple[tuple[str, str], ...]:
    """(type, encoded parameters after `patient=`) of each record search; the same for every
    patient, so encoded once (the code list alone is over a kilobyte)."""
    codes = sorted({code_token(c) for c in observation_codes if c})
    tails = []
    for resource_type in RECORD_TYPES:
        params: list[tuple[str, str]] = []
        if resource_type == "Observation":
            if not codes:
                continue
            # Many OR'd codes make a long URL; inside a batch entry it is body text, not a
            # request line, so no server URL length limit applies.
            params += [("code", ",".join(codes)), ("_sort", "-date")]
        if resource_type in _MEDICATION_INCLUDES:
            params.append(("_include", _MEDICATION_INCLUDES[resource_type]))
        params.append(("_count", str(page_size)))
        tails.append((resource_type, query_string(params)))
    return tuple(tails)


def record_queries(
    patient_id: str,
    observation_codes: Iterable[str],
    *,
    page_size: int,
    research_subject_studies: Sequence[str] = (),
    research_study_keys: Sequence[str] = (),
) -> tuple[Query, ...]:
    """The Patient read and every search of the record; optionally the stored write-back state.

    `research_subject_studies`: study keys whose existing ResearchSubject for this patient is
    read too (to skip unchanged write-backs); `research_study_keys`: studies whose
    ResearchStudy is looked up by identifier.
    """
    pid = normalize_patient_id(patient_id)
    if page_size < 1:
        raise ValueError("page_size must be >= 1")
    count = ("_count", str(page_size))
    queries = [Query("Patient", f"Patient/{pid}")]
    patient = query_string([("patient", pid)])
    for resource_type, tail in _search_tails(tuple(observation_codes), page_size):
        queries.append(Query(resource_type, f"{resource_type}?{patient}&{tail}"))
    queries.append(Query(ENROLMENT_LABEL, f"ResearchSubject?{patient}&{query_string([count])}"))
    if research_subject_studies:
        values = ",".join(
            f"{RESEARCH_SUBJECT_SYSTEM}|{_escape_token(research_subject_identifier_value(k, pid))}"
            for k in research_subject_studies
        )
        queries.append(
            Query("ResearchSubject", search_url("ResearchSubject", [("identifier", values), count]))
        )
    if research_study_keys:
        values = ",".join(f"{STUDY_SYSTEM}|{_escape_token(k)}" for k in research_study_keys)
        queries.append(
            Query("ResearchStudy", search_url("ResearchStudy", [("identifier", values), count]))
        )
    return tuple(queries)


def batch_bundle(urls: Iterable[str]) -> dict[str, Any]:
    """A batch Bundle of GET requests (relative URLs)."""
    return {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": url}} for url in urls],
    }


def medication_ids_missing(resources: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    """Ids of Medications referenced by medication resources but absent from `resources`.

    A server that ignores _include leaves them out; they are then fetched with the next pages.
    """
    resources = list(resources)  # read twice below; callers may pass a generator
    have = {r.get("id") for r in resources if r.get("resourceType") == "Medication"}
    wanted: set[str] = set()
    for resource in resources:
        if resource.get("resourceType") not in _MEDICATION_INCLUDES:
            continue
        ref = (resource.get("medicationReference") or {}).get("reference")
        if not isinstance(ref, str) or not ref.startswith("Medication/"):
            continue  # contained (#id) or absolute references are not ours to fetch
        mid = ref[len("Medication/") :].split("/_history/")[0]
        if FHIR_ID.fullmatch(mid) and mid not in have:
            wanted.add(mid)
    return tuple(sorted(wanted))


def medication_query(ids: Sequence[str], page_size: int) -> Query:
    """One search for the given Medications by id."""
    return Query(
        "Medication", search_url("Medication", [("_id", ",".join(ids)), ("_count", str(page_size))])
    )
