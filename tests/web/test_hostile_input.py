"""Hostile input at the HTTP edge (issue 13): deeply nested JSON is a 400 on every JSON endpoint
(finding 6), CR/LF in a path segment, a resource type or CDS feedback never forges a log line
(finding 7), `asOf` is YYYY-MM-DD only, and one notification cannot queue more than
MAX_NOTIFY_PATIENTS screenings nor our patient for a subject on another host (finding 10)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from service.core.settings import Settings
from service.web.notify import MAX_NOTIFY_PATIENTS
from service.web.webhooks import sign

pytestmark = pytest.mark.security

HOOK_SECRET = "webhook-secret-for-hostile-tests-01"
NOTIFY_SECRET = "notify-secret-for-hostile-tests-012"
NOTIFY = {"Authorization": f"Bearer {NOTIFY_SECRET}", "Content-Type": "application/fhir+json"}
BASE = "http://fhir.hospital.example/fhir"
DEEP = b"[" * 200_000 + b"]" * 200_000  # far past the parser's stack; under MAX_BODY_BYTES
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


@pytest.fixture
def app(make_app: Any, tmp_path: Path) -> Any:
    settings = Settings().with_overrides(
        fhir_base_url=BASE, queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
        webhook_secret=HOOK_SECRET, notify_secret=NOTIFY_SECRET, cds_jwt_required=False,
        coalesce_seconds=60.0, max_body_bytes=1_048_576,
    )
    made, _ = make_app(settings)
    return made


def queued(app: Any) -> list[str]:
    store = app.extensions["eligibility"].queue.store
    return [store.get_task(t).patient for t in store.queued_due(time.time() + 3600)]


def signed(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"X-Timestamp": stamp, "X-Signature": sign(HOOK_SECRET, stamp, body),
            "Content-Type": "application/json"}


def json_endpoints(http: Any, body: bytes) -> dict[str, Any]:
    """Send `body` to every endpoint that parses JSON; the answers by endpoint."""
    plain = {"Content-Type": "application/json"}
    return {
        "POST /screenings": http.post("/screenings", data=body, headers=plain),
        "POST /webhooks/screening": http.post("/webhooks/screening", data=body,
                                              headers=signed(body)),
        "POST /fhir-notify": http.post("/fhir-notify", data=body, headers=NOTIFY),
        "PUT /fhir-notify/Observation/o1": http.put("/fhir-notify/Observation/o1", data=body,
                                                     headers=NOTIFY),
        "POST /cds-services/trial-eligibility": http.post("/cds-services/trial-eligibility",
                                                          data=body, headers=plain),
        "POST feedback": http.post("/cds-services/trial-eligibility/feedback", data=body,
                                   headers=plain),
    }


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["arrays", "objects"])
def test_deeply_nested_json_is_400_on_every_json_endpoint(app, body):
    answers = json_endpoints(app.test_client(), body)
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == dict.fromkeys(answers, 400)
    for answer in answers.values():
        assert answer.mimetype in ("application/problem+json", "application/fhir+json")
        assert "Traceback" not in answer.get_data(as_text=True)
    assert queued(app) == []


# ------------------------------------------------------------------------------ log forging

FORGED = "Observation\r\n2026-11-30T00:00:00Z WARNING service.web.rest forged line"


def _raw_lines(caplog: Any) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_cr_lf_in_a_resource_type_of_the_path_is_refused_and_logged_escaped(app, caplog):
    caplog.set_level(logging.DEBUG)
    http = app.test_client()
    answers = [
        http.put("/fhir-notify/Observation%0d%0aforged/o1", data=b"{}", headers=NOTIFY),
        http.delete("/fhir-notify/Observation%0d%0aforged/o1", headers=NOTIFY),
        http.post("/fhir-notify", data=json.dumps({"resourceType": FORGED}), headers=NOTIFY),
        http.put("/fhir-notify/Observation/o1", headers=NOTIFY, data=json.dumps(
            {"resourceType": FORGED, "id": "o1"})),
    ]
    assert [a.status_code for a in answers] == [400, 400, 400, 400]
    assert any("forged" in line for line in _raw_lines(caplog))  # it was logged, escaped
    for line in _raw_lines(caplog):
        assert "\r" not in line and "\n" not in line, line


@pytest.mark.parametrize("card", [
    "card-1\r\n2026-11-30T00:00:00Z INFO service.web.cds_hooks CDS feedback: card x accepted",
    "card\n", "\u2028card", "a" * 65, "card\x1b[31m",
])
def test_cds_feedback_with_control_characters_is_refused_and_not_logged(app, caplog, card):
    caplog.set_level(logging.DEBUG)
    body = {"feedback": [{"card": card, "outcome": "accepted"}]}
    answer = app.test_client().post("/cds-services/trial-eligibility/feedback", json=body)
    assert answer.status_code == 400
    assert not any("CDS feedback" in line for line in _raw_lines(caplog))


def test_plain_cds_feedback_is_still_logged(app, caplog):
    caplog.set_level(logging.INFO)
    body = {"feedback": [{"card": "1f0e6a52-6c4b-5b8e-9d5e-3c1c2b7f6a10", "outcome": "accepted"}]}
    assert app.test_client().post("/cds-services/trial-eligibility/feedback",
                                  json=body).status_code == 200
    assert any("card 1f0e6a52-6c4b-5b8e-9d5e-3c1c2b7f6a10 accepted" in line
               for line in _raw_lines(caplog))


# ------------------------------------------------------------------------------ asOf


@pytest.mark.parametrize("value", ["2026-W46-7", "20261115", "2026-11-15T00:00", "2026-1-15",
                                   "２０２６-11-15", "2026-11-1５", "+2026-11-15", "2026-320"])
def test_as_of_accepts_only_yyyy_mm_dd(app, value):
    http = app.test_client()
    read = http.get(f"/patients/p1/eligibility?asOf={value}")
    job = http.post("/screenings", json={"patients": ["p1"], "asOf": value})
    assert read.status_code == job.status_code == 400
    assert read.get_json()["type"].endswith(":invalid-date")
    assert queued(app) == []


# ------------------------------------------------------------------------------ notifications


def bundle_of(subjects: list[str]) -> bytes:
    entries = [{"resource": {"resourceType": "Observation", "id": f"o{i}", "status": "final",
                             "code": {"text": "x"}, "subject": {"reference": ref}}}
               for i, ref in enumerate(subjects)]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


def test_a_notification_naming_too_many_patients_queues_none(app):
    http = app.test_client()
    too_many = bundle_of([f"Patient/p{i}" for i in range(MAX_NOTIFY_PATIENTS + 1)])
    answer = http.post("/fhir-notify", data=too_many, headers=NOTIFY)
    assert answer.status_code == 413
    issue = answer.get_json()["issue"][0]
    assert issue["code"] == "too-costly"
    assert f"at most {MAX_NOTIFY_PATIENTS}" in issue["diagnostics"]
    assert queued(app) == []
    # At the cap it is accepted, and one patient named many times counts once.
    at_cap = bundle_of([f"Patient/p{i}" for i in range(MAX_NOTIFY_PATIENTS)] + ["Patient/p0"] * 50)
    assert http.post("/fhir-notify", data=at_cap, headers=NOTIFY).status_code == 200
    assert len(queued(app)) == MAX_NOTIFY_PATIENTS


@pytest.mark.parametrize("subject", [
    "https://evil.example/fhir/Patient/p7", "http://fhir.hospital.example.evil/fhir/Patient/p7",
    "http://fhir.hospital.example/other/Patient/p7", "urn:uuid:p7", "Patient/..",
])
def test_a_subject_on_another_host_does_not_queue_our_patient(app, subject):
    http = app.test_client()
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
           "subject": {"reference": subject}}
    assert http.put("/fhir-notify/Observation/o1", data=json.dumps(obs),
                    headers=NOTIFY).status_code == 200
    assert http.post("/fhir-notify", data=bundle_of([subject]), headers=NOTIFY).status_code == 200
    assert queued(app) == []


@pytest.mark.parametrize("subject", ["Patient/p7", f"{BASE}/Patient/p7"])
def test_a_subject_on_our_fhir_server_queues_the_patient(app, subject):
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
           "subject": {"reference": subject}}
    assert app.test_client().put("/fhir-notify/Observation/o1", data=json.dumps(obs),
                                 headers=NOTIFY).status_code == 200
    assert queued(app) == ["p7"]
