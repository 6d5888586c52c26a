"""The client against the public HAPI sandbox (opt-in; skipped without network by the conftest)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from service.fhir.client import FhirClient
from service.fhir.errors import FhirRecordTooLarge
from service.usecases.patient_record import read_record_of_codes

pytestmark = pytest.mark.live

CODES = ("http://loinc.org|29463-7", "http://loinc.org|8302-2", "http://loinc.org|718-7")


@pytest.fixture
def live_client(live_fhir_settings):
    with FhirClient(replace(live_fhir_settings, fhir_timeout=20, fhir_max_retries=1)) as client:
        yield client


def test_metadata_and_a_patient_search(live_client):
    capabilities = live_client.capabilities()
    assert capabilities["fhirVersion"].startswith("4.0")

    patients = list(itertools.islice(live_client.search("Patient", {"_count": "3"}), 3))

    assert patients, "the sandbox always holds patients"
    assert all(p["resourceType"] == "Patient" and p.get("id") for p in patients)
    assert live_client.request_count == 2  # stopping early fetches no further page


def test_a_record_read_batch_on_hapi(live_client):
    weight = next(live_client.search("Observation", {"code": CODES[0], "_count": "1"}), None)
    ref = ((weight or {}).get("subject") or {}).get("reference", "")
    if not ref.startswith("Patient/"):
        pytest.skip("no body weight with a patient subject on the sandbox right now")
    patient_id = ref.split("/")[1]
    before = live_client.request_count
    try:
        record = read_record_of_codes(live_client, patient_id, CODES)[0]
    except FhirRecordTooLarge:
        pytest.skip("this sandbox patient's record exceeds the caps")
    assert record[0]["resourceType"] == "Patient" and record[0]["id"] == patient_id
    assert any(r["resourceType"] == "Observation" for r in record)
    assert live_client.request_count > before
