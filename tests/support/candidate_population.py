"""Ten patients for the candidate searches (`screen --all` and `--bulk`): three diagnosed in
three code forms, one already holding our ResearchSubject, one someone else's, five others."""

from __future__ import annotations

from typing import Any

from service.core.settings import Settings
from service.fhir import research_subject as rs
from service.fhir.client import FhirClient

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"


def put(resource: dict[str, Any]) -> dict[str, Any]:
    """A transaction entry that PUTs the resource under its own id."""
    return {"resource": resource,
            "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


def condition(cid: str, patient: str, system: str, code: str) -> dict[str, Any]:
    """A Condition entry naming `patient` (a reference, relative or absolute)."""
    return put({"resourceType": "Condition", "id": cid, "subject": {"reference": patient},
                "code": {"coding": [{"system": system, "code": code}]}})


def ours(rid: str, patient: str) -> dict[str, Any]:
    """A ResearchSubject of ours (pediatric-ln-cart) for `patient`."""
    return put({"resourceType": "ResearchSubject", "id": rid, "status": "ineligible",
                "identifier": [{"system": rs.RESEARCH_SUBJECT_SYSTEM,
                                "value": f"pediatric-ln-cart/{patient}"}],
                "study": {"reference": "ResearchStudy/any"},
                "individual": {"reference": f"Patient/{patient}"}})


def load_candidate_population(settings: Settings) -> None:
    """p0 (two diagnoses), p1 (absolute subject), p2 diagnosed; p3 asthma; p4 ours (diagnosis
    since removed: must be updated); p5 someone else's ResearchSubject; p6-p9 nothing."""
    base = settings.fhir_base_url
    entries = [put({"resourceType": "Patient", "id": f"p{i}", "gender": "female",
                    "birthDate": "2014-01-01"}) for i in range(10)]
    entries += [
        condition("c0", "Patient/p0", ICD10CM, "M32.14"),
        condition("c0b", "Patient/p0", SNOMED, "55464009"),  # two diagnoses, one candidate
        condition("c1", f"{base}/Patient/p1", ICD10, "M329"),
        condition("c2", "Patient/p2", SNOMED, "55464009"),
        condition("c3", "Patient/p3", ICD10CM, "J45.909"),  # asthma: not a candidate
        ours("rs4", "p4"),
        put({"resourceType": "ResearchSubject", "id": "rs5", "status": "candidate",
             "identifier": [{"system": "urn:other-registry", "value": "x"}],
             "study": {"reference": "ResearchStudy/any"},
             "individual": {"reference": "Patient/p5"}}),  # someone else's: not ours
    ]
    with FhirClient(settings) as client:
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
