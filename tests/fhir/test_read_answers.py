"""What a 200 read answer may not do (issue 13, findings 2 and 3).

- An error OperationOutcome anywhere in it (a searchset entry, a batch entry's
  `response.outcome`, a batch entry's resource) fails the read: the search did not run, so
  its emptiness is no "no data", and nothing is written.
- Only resources about this patient are used: subject `Patient/{id}`, or the same absolute on
  the configured FHIR base. Another patient's, another host's and unattributed ones are not.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import responses

from service.fhir.errors import FhirError
from service.usecases.patient_record import read_record_of_codes
from service.usecases.screening import screen_patient
from tests.support.fhir_testkit import BASE

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 11, 15)
PID = "pt-1"
FHIR_JSON = "application/fhir+json"
STUDY_REFS = {"refractory-sle-cart": "ResearchStudy/s1", "pediatric-ln-cart": "ResearchStudy/s2"}
PATIENT = {"resourceType": "Patient", "id": PID, "gender": "female", "birthDate": "2014-03-02"}


def outcome(severity: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": "exception",
                       "diagnostics": "search failed for Patient Jane Roe"}]}


def searchset(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": list(entries)}


def ok(resource: dict[str, Any], **response: Any) -> dict[str, Any]:
    return {"response": {"status": "200 OK", **response}, "resource": resource}


def sle(rid: str, subject: Any) -> dict[str, Any]:
    """An active SLE diagnosis (the concept sle-diagnosis reads), about `subject`."""
    resource: dict[str, Any] = {
        "resourceType": "Condition", "id": rid,
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "55464009"}]},
        "onsetDateTime": "2024-01-10",
    }
    if subject is not None:
        resource["subject"] = {"reference": subject}
    return resource


class Server:
    """Answers the read batch entry by entry; records the type of every Bundle POSTed."""

    def __init__(self, condition_entry: dict[str, Any] | None = None,
                 patient_entry: dict[str, Any] | None = None) -> None:
        self.condition_entry = condition_entry or ok(searchset())
        self.patient_entry = patient_entry or ok(PATIENT)
        self.posted: list[str] = []

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        bundle = json.loads(request.body)
        self.posted.append(bundle["type"])
        if bundle["type"] != "batch":
            return 500, {}, "no writes expected"
        entries = []
        for entry in bundle["entry"]:
            url = entry["request"]["url"]
            if url.startswith("Patient/"):
                entries.append(self.patient_entry)
            elif url.startswith("Condition?"):
                entries.append(self.condition_entry)
            else:
                entries.append(ok(searchset()))
        body = {"resourceType": "Bundle", "type": "batch-response", "entry": entries}
        return 200, {"Content-Type": FHIR_JSON}, json.dumps(body)


def screen(fhir: Any, mappings: Any, write: bool = True) -> Any:
    return screen_patient(fhir, mappings, PID, as_of=AS_OF, write=write,
                          research_studies=STUDY_REFS)


def status_of(outcome_: Any, criterion: str) -> str:
    study = next(s for s in outcome_.evaluation.studies if s.study == "refractory-sle-cart")
    return next(c.result for c in study.criteria if c.id == criterion)


FAILED_ANSWERS = {
    "searchset holding an error outcome": dict(condition_entry=ok(searchset(
        {"resource": outcome("error"), "search": {"mode": "outcome"}}))),
    "searchset holding a fatal outcome, no mode": dict(condition_entry=ok(searchset(
        {"resource": outcome("fatal")}))),
    "error in entry.response.outcome": dict(condition_entry=ok(
        searchset(), outcome=outcome("error"))),
    "an error outcome as the batch entry's resource": dict(condition_entry=ok(outcome("error"))),
    "an error outcome instead of the Patient": dict(patient_entry=ok(outcome("error"))),
    "an error outcome in a searchset entry's response": dict(condition_entry=ok(searchset(
        {"resource": sle("c1", f"Patient/{PID}"), "response": {"status": "200",
                                                                "outcome": outcome("error")}}))),
}


@responses.activate
@pytest.mark.parametrize("case", list(FAILED_ANSWERS))
def test_an_error_outcome_inside_a_200_answer_fails_the_read_and_nothing_is_written(
        fhir, mappings, case):
    server = Server(**FAILED_ANSWERS[case])
    responses.add_callback(responses.POST, BASE, callback=server)
    with pytest.raises(FhirError) as caught:
        screen(fhir, mappings)
    assert server.posted == ["batch"]  # read once, never a transaction
    assert "Jane Roe" not in str(caught.value)  # the server's text may quote records


@responses.activate
def test_a_warning_outcome_is_no_failure(fhir, mappings):
    # The control: a warning about the search (HAPI's "unknown parameter ignored") is not.
    server = Server(condition_entry=ok(searchset(
        {"resource": outcome("warning"), "search": {"mode": "outcome"}},
        {"resource": sle("c1", f"Patient/{PID}"), "search": {"mode": "match"}})))
    responses.add_callback(responses.POST, BASE, callback=server)
    assert status_of(screen(fhir, mappings, write=False), "sle-diagnosis") == "met"


@responses.activate
@pytest.mark.parametrize("subject", [
    None,  # no subject: anyone's
    "Patient/someone-else",
    f"https://evil.example/fhir/Patient/{PID}",  # the attack: any host ending in /Patient/{id}
    f"{BASE.replace('http://', 'https://')}/Patient/{PID}",  # another scheme
    f"{BASE}x/Patient/{PID}",  # a base that only starts like ours
    f"urn:uuid:{PID}",
    "Group/g1",
])
def test_another_patients_or_unattributed_diagnosis_is_not_used(fhir, mappings, subject):
    server = Server(condition_entry=ok(searchset({"resource": sle("c-foreign", subject)})))
    responses.add_callback(responses.POST, BASE, callback=server)
    record = read_record_of_codes(fhir, PID, mappings.observation_codes())[0]
    assert "c-foreign" not in {r.get("id") for r in record}
    assert status_of(screen(fhir, mappings, write=False), "sle-diagnosis") != "met"


@responses.activate
@pytest.mark.parametrize("subject", [
    f"Patient/{PID}", f"{BASE}/Patient/{PID}",
    f"{BASE.upper().replace('/BASER4', '/baseR4')}/Patient/{PID}",  # host case is no difference
])
def test_this_patients_diagnosis_is_used(fhir, mappings, subject):
    server = Server(condition_entry=ok(searchset({"resource": sle("c-own", subject)})))
    responses.add_callback(responses.POST, BASE, callback=server)
    assert "c-own" in {r.get("id") for r in read_record_of_codes(fhir,
        PID, mappings.observation_codes())[0]}
    assert status_of(screen(fhir, mappings, write=False), "sle-diagnosis") == "met"


@responses.activate
@pytest.mark.parametrize("status", [200, 500])
def test_deeply_nested_answers_are_a_protocol_error_not_a_crash(fhir, status):
    # Issue 13, finding 6: the answer parser's RecursionError is a FhirProtocolError like any
    # other unreadable answer (REST: 502), also in an error answer's body.
    from service.fhir.errors import FhirProtocolError, FhirTemporaryError

    deep = b"[" * 200_000 + b"]" * 200_000
    responses.get(f"{BASE}/Patient/{PID}", body=deep, status=status, content_type=FHIR_JSON)
    expected = FhirProtocolError if status == 200 else FhirTemporaryError
    with pytest.raises(expected):
        fhir.read("Patient", PID)
