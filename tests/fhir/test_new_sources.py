"""Immunizations and the patient's ResearchSubjects in other studies come from the one read
batch: the conformance study's exclusions see them on a real (local) FHIR server."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from service.fhir.client import FhirClient
from service.fhir.subjects import belongs_to
from service.mappings import load_mappings
from service.usecases.screening import screen_patient

REPO = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 11, 15)


def test_only_this_patients_research_subjects_and_immunizations_are_used():
    def subject(ref: str) -> dict:
        return {"resourceType": "ResearchSubject", "individual": {"reference": ref}}

    assert belongs_to(subject("Patient/p1"), "p1", None)
    assert not belongs_to(subject("Patient/p2"), "p1", None)
    assert not belongs_to({"resourceType": "ResearchSubject"}, "p1", None)   # names no one
    assert not belongs_to({"resourceType": "Immunization",
                           "patient": {"reference": "Patient/p2"}}, "p1", None)


@pytest.mark.integration
def test_a_recent_live_vaccine_and_enrolment_elsewhere_exclude(fhir_server, fhir_settings):
    mappings = load_mappings(f"{REPO / 'mappings'}:{REPO / 'mappings' / 'conformance'}")
    pid = f"conf-{uuid.uuid4().hex[:8]}"
    subject = {"reference": f"Patient/{pid}"}
    entries = [
        {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1990-01-01"},
        {"resourceType": "Immunization", "id": f"{pid}-mmr", "status": "completed",
         "patient": subject, "occurrenceDateTime": "2026-11-01",
         "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "03"}]}},
        {"resourceType": "ResearchStudy", "id": f"{pid}-other", "status": "active"},
        {"resourceType": "ResearchSubject", "id": f"{pid}-rs", "status": "on-study",
         "individual": subject, "study": {"reference": f"ResearchStudy/{pid}-other"}},
    ]
    settings = replace(fhir_settings, fhir_base_url=fhir_server.base_url)
    with FhirClient(settings) as client:
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in entries]})
        outcome = screen_patient(client, mappings, pid, as_of=AS_OF,
                                 studies=["lupus-conformance"], write=False)
    [study] = outcome.evaluation.studies
    results = {c.id: c for c in study.criteria}
    assert results["live-vaccine"].result == "not-met"
    assert results["live-vaccine"].evidence == (f"Immunization/{pid}-mmr",)
    assert results["other-trial"].result == "not-met"
    assert results["other-trial"].evidence == (f"ResearchSubject/{pid}-rs",)
    assert results["plasmapheresis-recent"].result == "met"
