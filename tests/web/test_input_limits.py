"""Bad input at the edge: bodies over MAX_BODY_BYTES get 413 on every endpoint that takes a
body, declared or streamed (chunked); patient ids that are not FHIR ids get 400 (CLI: exit 2)
on every surface before any request reaches the FHIR server (a counting proxy stands in front
of it); malformed notifications get 400 with an OperationOutcome; STU3 or R5 data gets a clear
error naming the version.

Fixed malformed notifications and STU3/R5 notifications are also in
tests/web/test_triggers.py (test_malformed_fhir_is_400_operation_outcome,
test_stu3_and_r5_resources_are_refused_clearly)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.serving import make_server

from service.core.settings import REPO_ROOT, Settings
from service.web import cds_hooks
from service.web.webhooks import sign
from tests.support.seed_population import AS_OF, mappings

pytestmark = pytest.mark.security

TOKEN = "api-token-for-input-tests-0123456789"
HOOK_SECRET = "webhook-secret-for-input-tests-0123"
NOTIFY_SECRET = "notify-secret-for-input-tests-0123"
LIMIT = 4096
API = {"Authorization": f"Bearer {TOKEN}"}
NOTIFY = {"Authorization": f"Bearer {NOTIFY_SECRET}", "Content-Type": "application/fhir+json"}

BAD_IDS = ["../x", "a/b", "x" * 65, "pätient", "患者", "a\u200bb", "a b", "a_b", "1;DROP",
           "Patient/../x", "Observation/1", "$everything", "a%2Fb", "a\x00b", "-" * 65,
           # Dot segments: `Patient/..` normalises to `Patient/`, a search of every patient.
           ".", "..", "Patient/.", "Patient/.."]


def signed(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {**API, "X-Timestamp": stamp, "X-Signature": sign(HOOK_SECRET, stamp, body),
            "Content-Type": "application/json"}


@pytest.fixture
def service(make_app, proxy, tmp_path: Path) -> Iterator[Any]:
    """The real app (real screener) with its FHIR server behind the counting proxy."""
    settings = Settings().with_overrides(
        fhir_base_url=proxy.base_url, queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
        api_tokens=(TOKEN,), webhook_secret=HOOK_SECRET, notify_secret=NOTIFY_SECRET,
        cds_jwt_required=False, cds_allowed_fhir_servers=(proxy.base_url,),
        max_body_bytes=LIMIT, coalesce_seconds=0.0,
    )
    app, _ = make_app(settings)
    yield app


def queued(app: Any) -> list[str]:
    store = app.extensions["eligibility"].queue.store
    return store.queued_due(time.time() + 3600)


def body_routes(app: Any) -> list[tuple[str, str]]:
    """(method, url) of every route taking a body, its path parameters filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH"}):
            url = (rule.rule.replace("<rtype>", "Observation").replace("<rid>", "o1")
                   .replace("<raw_id>", "p1"))
            found.append((method, url))
    return found


def _auth_for(url: str, body: bytes) -> dict[str, str]:
    if url.startswith("/fhir-notify"):
        return NOTIFY
    if url == "/webhooks/screening":
        return signed(body)
    return {**API, "Content-Type": "application/json"}


# ------------------------------------------------------------------------------ 413


def test_every_body_over_the_limit_is_413_and_does_nothing(service, proxy):
    routes = body_routes(service)
    assert len(routes) >= 6  # screenings, webhook, notify (POST, PUT), CDS service and feedback
    big = json.dumps({"patients": ["p1"], "pad": "x" * LIMIT}).encode()
    http = service.test_client()
    for method, url in routes:
        response = http.open(url, method=method, data=big, headers=_auth_for(url, big))
        assert response.status_code == 413, (method, url, response.get_data(as_text=True))
    assert queued(service) == []
    assert proxy.requests() == []


def test_a_streamed_body_over_the_limit_is_413_too(service, proxy):
    # Chunked transfer declares no length: the body must still be cut off and refused.
    server = make_server("127.0.0.1", 0, service, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        padding = b" " * (LIMIT * 4)
        for method, url in body_routes(service):
            # Valid JSON if it were cut at the limit: only the length can refuse it.
            body = b'{"patients": ["p1"]}' + padding
            headers = _auth_for(url, body)
            answer = requests.request(method, base + url, data=iter([body[:100], body[100:]]),
                                      headers=headers, timeout=30)
            assert answer.status_code == 413, (method, url, answer.text[:200])
        small = b'{"patients": ["p1"]}'
        ok = requests.post(base + "/screenings", data=iter([small]),
                           headers=_auth_for("/screenings", small), timeout=30)
        assert ok.status_code == 202
    finally:
        server.shutdown()
    assert len(queued(service)) == 1
    assert proxy.requests() == []


# ------------------------------------------------------------------------------ patient ids


@pytest.mark.parametrize("bad", BAD_IDS)
def test_invalid_patient_ids_are_400_on_every_surface_before_any_fhir_request(
    service, proxy, bad
):
    http = service.test_client()
    answers = []
    if "\x00" not in bad:
        answers.append(http.get(f"/patients/{quote(bad, safe='')}/eligibility", headers=API))
    answers.append(http.post("/screenings?wait=true", headers=API, json={"patients": [bad]}))
    answers.append(http.post("/screenings", headers=API, json={"patients": ["ok-1", bad]}))
    hook = json.dumps({"patient": bad}).encode()
    answers.append(http.post("/webhooks/screening", data=hook, headers=signed(hook)))
    cds = {"hook": "patient-view", "hookInstance": "h1",
           "context": {"userId": "Practitioner/1", "patientId": bad},
           "fhirServer": proxy.base_url}
    answers.append(http.post("/cds-services/trial-eligibility", headers=API, json=cds))
    for answer in answers:
        assert answer.status_code == 400, answer.get_data(as_text=True)
        assert answer.mimetype == "application/problem+json"
        assert "FHIR Patient id" in answer.get_json()["detail"]
    # A notification naming such a patient screens nobody.
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "code": {"text": "x"}, "subject": {"reference": f"Patient/{bad}"}}
    note = http.put("/fhir-notify/Observation/o1", data=json.dumps(obs), headers=NOTIFY)
    assert note.status_code in (200, 400)
    assert queued(service) == []
    assert proxy.requests() == []


def test_invalid_patient_ids_on_the_command_line_exit_2_before_any_fhir_request(proxy):
    env = {**os.environ, "FHIR_BASE_URL": proxy.base_url, "PYTHONPATH": str(REPO_ROOT),
           "LOG_LEVEL": "DEBUG"}
    for bad in ["../x", "a/b", "x" * 65, "pätient", ".", ".."]:
        done = subprocess.run([sys.executable, "-m", "service.cli.main", "screen", "ok-1", bad],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 2, done.stderr
        assert "FHIR logical id" in done.stderr
    assert proxy.requests() == []


# ------------------------------------------------------------------------------ notifications


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                               max_size=4),
    max_leaves=12,
)
resource_like = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Observation", "Patient", "Condition", "Bundle",
                                      "Basic", "", "observation"])},
    optional={"id": st.one_of(st.text(max_size=8), json_values),
              "subject": st.one_of(json_values, st.just({"reference": "Patient/p1"})),
              "status": json_values, "code": json_values, "entry": json_values,
              "valueQuantity": json_values, "context": json_values},
)


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.one_of(json_values.map(json.dumps), resource_like.map(json.dumps),
                      st.binary(max_size=40).map(lambda b: b.decode("latin-1"))),
       put=st.booleans())
def test_any_notification_body_is_200_or_400_with_an_operation_outcome(service, proxy, body,
                                                                        put):
    http = service.test_client()
    if put:
        answer = http.put("/fhir-notify/Observation/o1", data=body, headers=NOTIFY)
    else:
        answer = http.post("/fhir-notify", data=body, headers=NOTIFY)
    assert answer.status_code in (200, 400), answer.get_data(as_text=True)
    outcome = answer.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["severity"] == ("error" if answer.status_code == 400 else "information")
    assert issue["diagnostics"]
    assert proxy.requests() == []


# ------------------------------------------------------------------------------ STU3 / R5

STU3_OBSERVATION = {"resourceType": "Observation", "id": "s3", "status": "final",
                    "code": {"text": "Hb"}, "subject": {"reference": "Patient/p1"},
                    "context": {"reference": "Encounter/1"}}
R5_REQUEST = {"resourceType": "MedicationRequest", "id": "r5", "status": "active",
              "intent": "order", "medication": {"concept": {"text": "prednisone"}},
              "subject": {"reference": "Patient/p1"}}


@pytest.mark.parametrize(("resource", "key", "version"), [
    (STU3_OBSERVATION, "observations", "STU3"), (R5_REQUEST, "medicationRequests", "R5")])
def test_stu3_or_r5_in_a_cds_prefetch_is_a_clear_422(service, proxy, resource, key, version):
    prefetch: dict[str, Any] = {"patient": {"resourceType": "Patient", "id": "p1"}}
    for name in cds_hooks.prefetch_templates(mappings().observation_codes()):
        if name != "patient":
            prefetch[name] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    prefetch[key] = {"resourceType": "Bundle", "type": "searchset",
                     "entry": [{"resource": resource}]}
    body = {"hook": "patient-view", "hookInstance": "h1", "prefetch": prefetch,
            "context": {"userId": "Practitioner/1", "patientId": "p1"}}
    answer = service.test_client().post("/cds-services/trial-eligibility", headers=API,
                                        json=body)
    assert answer.status_code == 422
    detail = answer.get_json()["detail"]
    assert version in detail and "R4" in detail
    assert proxy.requests() == []


FHIR = "http://fhir.invalid/fhir"  # answered by `responses`; nothing leaves the process


def _batch_answer(request: Any) -> tuple[int, dict[str, str], str]:
    """A FHIR server that holds one R5 MedicationRequest in Patient/p1's record."""
    entries = []
    for entry in json.loads(request.body)["entry"]:
        url = entry["request"]["url"]
        if "?" not in url:
            resource = {"resourceType": "Patient", "id": "p1", "birthDate": "2014-01-01"}
        else:
            rtype = urlsplit(url).path
            found = [R5_REQUEST] if rtype == "MedicationRequest" else []
            resource = {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                        "entry": [{"resource": r, "search": {"mode": "match"}}
                                  for r in found]}
        entries.append({"resource": resource, "response": {"status": "200 OK"}})
    body = {"resourceType": "Bundle", "type": "batch-response", "entry": entries}
    return 200, {"Content-Type": "application/fhir+json"}, json.dumps(body)


def test_r5_data_from_the_fhir_server_is_a_clear_422_and_nothing_is_written(make_app, tmp_path):
    settings = Settings().with_overrides(fhir_base_url=FHIR,
                                         queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}")
    app, _ = make_app(settings)
    try:
        with responses.RequestsMock() as mock:
            mock.add_callback(responses.POST, FHIR, callback=_batch_answer)
            answer = app.test_client().get(f"/patients/p1/eligibility?asOf={AS_OF}")
            assert [c.request.method for c in mock.calls] == ["POST"]
            sent = json.loads(mock.calls[0].request.body)
            assert all(e["request"]["method"] == "GET" for e in sent["entry"])
    finally:
        app.extensions["eligibility"].queue.stop()
    assert answer.status_code == 422
    detail = answer.get_json()["detail"]
    assert "R5" in detail and "R4" in detail and "Patient/p1" in detail

