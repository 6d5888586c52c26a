"""Every answer matches /openapi.json (status code, content type, response schema, headers) and
none is a server error: schemathesis-generated requests, plus a hand-made request for every
documented answer that generation rarely reaches (2xx with real bodies, 401, 404, 412, 413,
422, 503), against the real engine over the seeded local FHIR server.

tests/web/test_openapi.py checks routes against the document and no 5xx with a
fake screener; this adds response conformance."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from service.core.settings import Settings
from service.web import cds_hooks
from service.web.webhooks import sign
from tests.support.seed_population import AS_OF, Population, mappings
from tests.support.server_state import wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

TOKEN = "api-token-for-conformance-0123456789"
HOOK_SECRET = "webhook-secret-for-conformance-0123"
NOTIFY_SECRET = "notify-secret-for-conformance-0123"
MAX_BODY = 256 * 1024
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
# A 503 while the FHIR server is down is the documented answer, not a server error.
DOCUMENT_CHECKS = CHECKS[1:]
API = {"Authorization": f"Bearer {TOKEN}"}
NOTIFY = {"Authorization": f"Bearer {NOTIFY_SECRET}", "Content-Type": "application/fhir+json"}


@pytest.fixture
def app(make_app, population: Population, tmp_path: Path) -> Iterator[Any]:
    settings = Settings().with_overrides(
        fhir_base_url=population.base_url, queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
        api_tokens=(TOKEN,), webhook_secret=HOOK_SECRET, notify_secret=NOTIFY_SECRET,
        cds_jwt_required=False, coalesce_seconds=0.0, max_body_bytes=MAX_BODY,
        public_url="https://elig.example.org",
    )
    made, _ = make_app(settings)
    yield made


@pytest.fixture
def schema(app: Any) -> Any:
    return schemathesis.openapi.from_wsgi("/openapi.json", app, headers=API)


def signed(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {**API, "X-Timestamp": stamp, "X-Signature": sign(HOOK_SECRET, stamp, body),
            "Content-Type": "application/json"}


def _call(app: Any, case: Any) -> Any:
    if case.operation.path.startswith("/fhir-notify"):
        return case.call(app=app, headers={"Authorization": NOTIFY["Authorization"]})
    if case.operation.path == "/webhooks/screening":
        # Signed over the exact bytes sent, so generated bodies reach the body checks.
        body = b"" if not isinstance(case.body, dict | list | str | int | float) else (
            json.dumps(case.body).encode())
        return app.test_client().post("/webhooks/screening", data=body, headers=signed(body))
    return case.call(app=app, headers=API)


@pytest.mark.slow
def test_generated_requests_get_documented_answers(app, schema):
    failures: list[tuple[str, int, str]] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = _call(app, case)
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as exc:
                failures.append(f"{case.operation.label} -> {response.status_code}: "
                                f"{_titles(exc)}")

        run()
    assert not failures, "\n".join(sorted(set(failures)))


# ------------------------------------------------------------------------------ hand-made


def _prefetch(bundle: dict[str, Any], pid: str) -> dict[str, Any]:
    """A full CDS prefetch of a seed clone's record, shaped as the discovery templates ask."""
    resources = [e["resource"] for e in bundle["entry"]]
    medications = [r for r in resources if r["resourceType"] == "Medication"]
    prefetch: dict[str, Any] = {}
    for key, template in cds_hooks.prefetch_templates(mappings().observation_codes()).items():
        if key == "patient":
            prefetch[key] = next(r for r in resources if r["resourceType"] == "Patient")
            continue
        rtype = template.split("?", 1)[0]
        found = [r for r in resources if r["resourceType"] == rtype]
        if rtype.startswith("Medication"):
            found += medications
        prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                         "entry": [{"resource": r} for r in found]}
    assert prefetch["patient"]["id"] == pid
    return prefetch


def _hook(pid: str, prefetch: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"hook": "patient-view", "hookInstance": f"hi-{time.time_ns()}",
                            "context": {"userId": "Practitioner/1", "patientId": pid}}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def _observation(pid: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "obs-1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": f"Patient/{pid}"}, **extra}


def test_every_documented_answer_matches_the_document(app, schema, population):
    pid, other = population.add(2)
    http = app.test_client()
    big = b'{"x": "' + b"a" * MAX_BODY + b'"}'
    obs = json.dumps(_observation(pid))
    stu3 = json.dumps(_observation(pid, context={"reference": "Encounter/1"}))
    hook_body = json.dumps({"patient": pid}).encode()
    prefetch = _prefetch(population.bundles[pid], pid)
    stu3_prefetch = {**prefetch, "observations": {
        "resourceType": "Bundle", "type": "searchset",
        "entry": [{"resource": json.loads(stu3)}]}}
    cases: list[tuple[str, str, str, dict[str, Any], int]] = [
        ("/healthz", "GET", "/healthz", {}, 200),
        ("/readyz", "GET", "/readyz", {}, 200),
        ("/openapi.json", "GET", "/openapi.json", {"headers": API}, 200),
        ("/openapi.json", "GET", "/openapi.json", {}, 401),
        ("/studies", "GET", "/studies", {"headers": API}, 200),
        ("/patients/{patient}/eligibility", "GET",
         f"/patients/{pid}/eligibility?asOf={AS_OF}", {"headers": API}, 200),
        ("/patients/{patient}/eligibility", "GET", "/patients/nobody-here/eligibility",
         {"headers": API}, 404),
        ("/patients/{patient}/eligibility", "GET", "/patients/a_b/eligibility",
         {"headers": API}, 400),
        ("/screenings", "POST", "/screenings?wait=true",
         {"headers": API, "json": {"patients": [pid], "asOf": AS_OF.isoformat()}}, 200),
        ("/screenings", "POST", "/screenings?wait=true",
         {"headers": API, "json": {"patients": ["nobody-here"]}}, 404),
        ("/screenings", "POST", "/screenings", {"headers": API, "json": {"patients": []}}, 400),
        ("/screenings", "POST", "/screenings",
         {"headers": {**API, "Content-Type": "application/json"}, "data": big}, 413),
        ("/screenings/{job}", "GET", "/screenings/" + "0" * 32, {"headers": API}, 404),
        ("/webhooks/screening", "POST", "/webhooks/screening",
         {"headers": signed(hook_body), "data": hook_body}, 202),
        ("/webhooks/screening", "POST", "/webhooks/screening",
         {"headers": {**signed(hook_body), "X-Signature": "sha256=" + "0" * 64},
          "data": hook_body}, 401),
        ("/webhooks/screening", "POST", "/webhooks/screening",
         {"headers": signed(big), "data": big}, 413),
        ("/fhir-notify", "POST", "/fhir-notify", {"headers": NOTIFY, "data": b""}, 200),
        ("/fhir-notify", "POST", "/fhir-notify", {"headers": NOTIFY, "data": obs}, 200),
        ("/fhir-notify", "POST", "/fhir-notify", {"headers": NOTIFY, "data": "{no"}, 400),
        ("/fhir-notify", "POST", "/fhir-notify", {"headers": NOTIFY, "data": big}, 413),
        ("/fhir-notify", "POST", "/fhir-notify", {"data": obs}, 401),
        ("/fhir-notify/{rtype}/{rid}", "PUT", "/fhir-notify/Observation/obs-1",
         {"headers": NOTIFY, "data": obs}, 200),
        ("/fhir-notify/{rtype}/{rid}", "PUT", "/fhir-notify/Observation/obs-1",
         {"headers": NOTIFY, "data": stu3}, 400),
        ("/fhir-notify/{rtype}/{rid}", "PUT", "/fhir-notify/Observation/obs-1",
         {"headers": NOTIFY, "data": big}, 413),
        ("/fhir-notify/{rtype}/{rid}", "DELETE", "/fhir-notify/Observation/obs-1",
         {"headers": NOTIFY}, 200),
        ("/fhir-notify/{rtype}/{rid}", "DELETE", "/fhir-notify/Basic/1", {"headers": NOTIFY},
         400),
        ("/cds-services", "GET", "/cds-services", {}, 200),
        ("/cds-services/trial-eligibility", "POST", "/cds-services/trial-eligibility",
         {"headers": API, "json": _hook(pid, prefetch)}, 200),
        ("/cds-services/trial-eligibility", "POST", "/cds-services/trial-eligibility",
         {"headers": API, "json": _hook(pid, stu3_prefetch)}, 422),
        ("/cds-services/trial-eligibility", "POST", "/cds-services/trial-eligibility",
         {"headers": API, "json": _hook(pid, None)}, 412),
        ("/cds-services/trial-eligibility", "POST", "/cds-services/trial-eligibility",
         {"headers": {**API, "Content-Type": "application/json"}, "data": big}, 413),
        ("/cds-services/trial-eligibility", "POST", "/cds-services/trial-eligibility",
         {"json": _hook(pid, prefetch)}, 401),
        ("/cds-services/trial-eligibility/feedback", "POST",
         "/cds-services/trial-eligibility/feedback",
         {"headers": API, "json": {"feedback": [{"card": "c1", "outcome": "accepted"}]}}, 200),
        ("/cds-services/trial-eligibility/feedback", "POST",
         "/cds-services/trial-eligibility/feedback", {"headers": API, "json": {}}, 400),
    ]
    failures = []
    for documented, method, url, kwargs, expected in cases:
        response = http.open(url, method=method, **kwargs)
        failures += _conformance(schema, documented, method, response, expected)

    # A batch job: 202 with Location, then its status while queued and once done.
    queued = http.post("/screenings", headers=API,
                       json={"patients": [pid, other], "asOf": AS_OF.isoformat()})
    failures += _conformance(schema, "/screenings", "POST", queued, 202)
    location = queued.headers["Location"]
    failures += _conformance(schema, "/screenings/{job}", "GET", http.get(location, headers=API),
                             200)
    app.extensions["eligibility"].queue.start_embedded(1)
    done = wait_until(lambda: (r := http.get(location, headers=API)).get_json()["state"] ==
                      "done" and r, what="the batch done")
    assert {p["state"] for p in done.get_json()["patients"]} == {"done"}
    failures += _conformance(schema, "/screenings/{job}", "GET", done, 200)
    assert not failures, "\n".join(failures)


def test_answers_while_the_fhir_server_is_down_match_the_document(make_app, tmp_path):
    settings = Settings().with_overrides(
        fhir_base_url="http://127.0.0.1:9/fhir", queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
        fhir_max_retries=0, fhir_timeout=1.0)
    app, _ = make_app(settings)
    try:
        schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
        http = app.test_client()
        failures = _conformance(schema, "/readyz", "GET", http.get("/readyz"), 503,
                                checks=DOCUMENT_CHECKS)
        down = http.get(f"/patients/p1/eligibility?asOf={AS_OF}")
        failures += _conformance(schema, "/patients/{patient}/eligibility", "GET", down, 503,
                                 checks=DOCUMENT_CHECKS)
        assert int(down.headers["Retry-After"]) > 0
        assert not failures, "\n".join(failures)
    finally:
        app.extensions["eligibility"].queue.stop()


def _titles(exc: FailureGroup) -> str:
    return "; ".join(sorted({getattr(f, "title", type(f).__name__) for f in exc.exceptions}))


def _conformance(schema: Any, path: str, method: str, response: Any, expected: int,
                 checks: list[Any] = CHECKS) -> list[str]:
    """Problems of one answer: not the expected status, or not what the document says."""
    label = f"{method} {path} -> {response.status_code}"
    if response.status_code != expected:
        return [f"{label}, expected {expected}: {response.get_data(as_text=True)[:300]}"]
    # Path parameters only name the request in a failure report; the answer is what is checked.
    case = schema[path][method].Case(
        path_parameters={name: "x" for name in re.findall(r"{(\w+)}", path)})
    try:
        case.validate_response(response, checks=checks)
    except FailureGroup as exc:
        return [f"{label}: {_titles(exc)}"]
    return []
