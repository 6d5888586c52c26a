"""The decision use cases on the local FHIR server: a person's decision is never overwritten,
the hospital's own records are never undone, bad input writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.fhir.client import FhirClient
from service.fhir.confirmations import CRITERION_SYSTEM
from service.fhir.errors import FhirNotFound
from service.usecases import confirm, undo, workflow_status
from service.usecases.confirm import Author
from service.usecases.errors import Refused, StaleRecord
from service.usecases.screener import Screener
from tests.support.fakes import real_mappings
from tests.support.seed_population import AS_OF

WHO = Author(name="cora", display="Cora Coordinator")
NOW = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)


@pytest.fixture
def screened(population, fhir_settings):
    """(screener, patient id, study key) of a seed clone screened with write-back."""
    svc = Screener(fhir_settings, mappings=real_mappings())
    for pid in population.add(4):
        written = svc.screen(pid, as_of=AS_OF)["researchSubjects"]
        if written:
            return svc, pid, next(iter(written))
    pytest.fail("no seed clone got a ResearchSubject")


def test_workflow_status_never_overwrites_a_change_made_since(screened):
    svc, pid, key = screened
    seen = workflow_status.subject_for(svc, pid, key)["meta"]["versionId"]
    status, _ = workflow_status.set_workflow_status(
        svc, author=WHO, patient_id=pid, study_key=key, status="screening", seen_version=seen,
        now=NOW)
    assert status == "screening"
    # A second person's form was made from the version before that change.
    with pytest.raises(StaleRecord) as stale:
        workflow_status.set_workflow_status(
            svc, author=WHO, patient_id=pid, study_key=key, status="on-study",
            seen_version=seen, now=NOW)
    assert stale.value.current["status"] == "screening"
    assert workflow_status.subject_for(svc, pid, key)["status"] == "screening"


def test_workflow_status_refuses_unknown_input_before_writing(screened):
    svc, pid, key = screened
    before = workflow_status.subject_for(svc, pid, key)
    for study, status in (("no-such-study", "screening"), (key, "eligible"), (key, "bogus")):
        with pytest.raises(Refused):
            workflow_status.set_workflow_status(
                svc, author=WHO, patient_id=pid, study_key=study, status=status,
                seen_version=before["meta"]["versionId"], now=NOW)
    assert workflow_status.subject_for(svc, pid, key)["meta"] == before["meta"]


def test_undo_refuses_the_hospitals_own_record(screened, fhir_settings):
    svc, pid, _ = screened
    hospital = {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": CRITERION_SYSTEM, "code": "consent"}]},
                "subject": {"reference": f"Patient/{pid}"}, "valueBoolean": True}
    with FhirClient(fhir_settings) as client:
        answer = client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": hospital, "request": {"method": "POST", "url": "Observation"}}]})
        ref = answer["entry"][0]["response"]["location"].split("/_history/")[0]
        with pytest.raises(Refused):
            undo.undo_confirmation(svc, author=WHO, patient_id=pid, ref=ref, now=NOW)
        assert client.read(*ref.split("/")[-2:])["status"] == "final"


def test_confirm_writes_nothing_for_an_unknown_patient_or_criterion(screened):
    svc, pid, key = screened
    manual = next(c for c in real_mappings().studies[key].criteria if c.kind == "manual")
    with pytest.raises(Refused):
        confirm.confirm_criterion(svc, author=WHO, patient_id=pid, study_key=key,
                                  criterion_id="no-such-criterion", met=True, day=AS_OF,
                                  note="", now=NOW)
    with pytest.raises(FhirNotFound):
        confirm.confirm_criterion(svc, author=WHO, patient_id="nobody-here", study_key=key,
                                  criterion_id=manual.id, met=True, day=AS_OF, note="", now=NOW)
    found = list(svc.client().search("Observation", {"subject": "Patient/nobody-here"}))
    assert found == []


def test_confirm_then_undo_round_trip(screened):
    svc, pid, key = screened
    manual = next(c for c in real_mappings().studies[key].criteria
                  if c.kind == "manual" and c.rule != "consent")
    ref = confirm.confirm_criterion(svc, author=WHO, patient_id=pid, study_key=key,
                                    criterion_id=manual.id, met=True, day=AS_OF, note="seen",
                                    now=NOW)
    assert ref.startswith("Observation/")
    assert undo.undo_confirmation(svc, author=WHO, patient_id=pid, ref=ref, now=NOW) == ref
    assert svc.client().read(*ref.split("/"))["status"] == "entered-in-error"
    with pytest.raises(Refused):  # already undone: refused, nothing written again
        undo.undo_confirmation(svc, author=WHO, patient_id=pid, ref=ref, now=NOW)
