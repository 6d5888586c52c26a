"""REST surface through the Flask test client: studies, eligibility, screenings, errors, auth."""

from __future__ import annotations

from datetime import date

import pytest

from service.engine.record import RecordError
from service.fhir.errors import FhirFatalError, FhirNotFound, FhirTemporaryError
from tests.support.fakes import real_mappings, wait_until

TOKEN = "s3cret-token-for-tests-0123456789"
PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    assert "Traceback" not in response.get_data(as_text=True)
    return body


# ------------------------------------------------------------------------------ health


def test_healthz(http):
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_ready_when_fhir_mappings_and_queue_answer(make_app):
    app, _ = make_app()
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"fhir": "ok", "mappings": "ok", "queue": "ok"}


def test_readyz_503_names_the_fhir_server_when_it_is_down(make_app):
    app, _ = make_app(fhir_up=False)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert "did not answer GET metadata" in body["checks"]["fhir"]
    assert body["checks"]["queue"] == "ok"


def test_readyz_503_when_the_queue_is_unreachable(make_app):
    app, _ = make_app()

    def broken() -> None:
        raise OSError("disk gone")

    app.extensions["eligibility"].queue.ping = broken
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["queue"] != "ok"


# ------------------------------------------------------------------------------ studies


def test_studies_list_every_criterion_of_the_mappings(http):
    response = http.get("/studies")
    assert response.status_code == 200
    studies = response.get_json()["studies"]
    mappings = real_mappings()
    assert [s["study"] for s in studies] == list(mappings.studies)
    for study in studies:
        expected = mappings.studies[study["study"]].criteria
        assert [c["id"] for c in study["criteria"]] == [c.id for c in expected]
        assert [c["text"] for c in study["criteria"]] == [c.text for c in expected]
        assert {c["kind"] for c in study["criteria"]} <= {"automatic", "manual"}


# ------------------------------------------------------------------------------ eligibility


def test_eligibility_body_has_the_api_md_shape_and_never_writes(make_app):
    app, screener = make_app()
    response = app.test_client().get("/patients/123/eligibility?asOf=2026-06-01")
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["patient", "asOf", "studies"]
    assert body["patient"] == "Patient/123"
    assert body["asOf"] == "2026-06-01"
    assert [s["study"] for s in body["studies"]] == list(real_mappings().studies)
    for study in body["studies"]:
        assert study["researchStudy"].startswith("ResearchStudy/")
        assert study["status"] in ("eligible", "potential-candidate", "ineligible")
        for crit in study["criteria"]:
            assert crit["result"] in ("met", "not-met", "unknown")
            assert {"id", "result", "reason", "evidence"} <= set(crit)
    assert screener.calls == [("evaluate", "123", date(2026, 6, 1), None)]


def test_eligibility_accepts_patient_prefix_and_repeated_study(make_app):
    app, screener = make_app()
    keys = list(real_mappings().studies)
    url = f"/patients/Patient/abc-1.2/eligibility?study={keys[1]}&study={keys[1]}"
    response = app.test_client().get(url)
    assert response.status_code == 200
    assert [s["study"] for s in response.get_json()["studies"]] == [keys[1]]
    kind, pid, as_of, studies = screener.calls[0]
    assert (kind, pid, studies) == ("evaluate", "abc-1.2", (keys[1],))
    assert as_of == date.today()


@pytest.mark.parametrize("pid", ["a_b", "x" * 65, "Patient/", "Observation/1", "a%20b", "..%2F"])
def test_malformed_patient_id_is_400_before_any_fhir_request(make_app, pid):
    app, screener = make_app()
    body = assert_problem(app.test_client().get(f"/patients/{pid}/eligibility"), 400)
    assert "FHIR Patient id" in body["detail"]
    assert screener.calls == []


@pytest.mark.parametrize("query", ["asOf=2026-13-01", "asOf=yesterday", "study=nope"])
def test_bad_query_parameters_are_400(make_app, query):
    app, screener = make_app()
    assert_problem(app.test_client().get(f"/patients/1/eligibility?{query}"), 400)
    assert screener.calls == []


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (FhirNotFound("Resource Patient/zz is not known", status=404), 404),
        (FhirTemporaryError("connection refused"), 503),
        (FhirFatalError("HAPI-0000: forbidden for Patient/other", status=403), 502),
        (RecordError("Observation/1 is not FHIR R4 (STU3)"), 422),
    ],
)
def test_fhir_and_record_errors_map_to_problems(make_app, error, status):
    app, screener = make_app()
    screener.errors["zz"] = error
    response = app.test_client().get("/patients/zz/eligibility")
    body = assert_problem(response, status)
    if status == 503:
        assert int(response.headers["Retry-After"]) > 0
    if status == 502:
        # The server's own message may name other records: never passed through.
        assert "Patient/other" not in response.get_data(as_text=True)
    if status == 404:
        assert "Patient/zz" in body["detail"]


def test_retry_after_follows_the_servers_hint(make_app):
    app, screener = make_app()
    screener.errors["zz"] = FhirTemporaryError("busy", status=429, retry_after=17.2)
    response = app.test_client().get("/patients/zz/eligibility")
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == "18"


def test_unexpected_errors_are_500_without_details(make_app):
    app, screener = make_app()
    screener.errors["zz"] = RuntimeError("secret internals of Patient/other")
    response = app.test_client().get("/patients/zz/eligibility")
    assert_problem(response, 500)
    assert "secret internals" not in response.get_data(as_text=True)


def test_unknown_route_and_method_are_problems(http):
    assert_problem(http.get("/nope"), 404)
    response = http.delete("/studies")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


# ------------------------------------------------------------------------------ auth


def test_token_required_everywhere_but_health_discovery_and_notify(make_app):
    app, _ = make_app(api_tokens=(TOKEN,))
    http = app.test_client()
    for path in ("/studies", "/patients/1/eligibility", "/openapi.json", "/screenings/" + "0" * 32):
        response = http.get(path)
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert_problem(http.get(path, headers={"Authorization": "Bearer wrong"}), 401)
        assert_problem(http.get(path, headers={"Authorization": TOKEN}), 401)
    assert_problem(http.post("/screenings", json={"patients": ["1"]}), 401)
    assert_problem(http.post("/webhooks/screening", json={"patient": "1"}), 401)
    assert http.get("/healthz").status_code == 200
    assert http.get("/readyz").status_code == 200
    assert http.get("/cds-services").status_code == 200
    # The notify endpoint answers by its own secret, not the API token.
    assert http.post("/fhir-notify").status_code == 401
    ok = http.get("/studies", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200


def test_any_of_several_tokens_is_accepted(make_app):
    other = "second-token-for-rotation-000000"
    app, _ = make_app(api_tokens=(TOKEN, other))
    http = app.test_client()
    for token in (TOKEN, other):
        assert http.get("/studies", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_body_over_the_limit_is_413(make_app):
    app, screener = make_app(max_body_bytes=1024)
    payload = {"patients": [f"p{i}" for i in range(300)]}
    response = app.test_client().post("/screenings", json=payload)
    assert_problem(response, 413)
    assert screener.calls == []


# ------------------------------------------------------------------------------ screenings


def test_wait_true_screens_one_patient_now(make_app):
    app, screener = make_app()
    keys = list(real_mappings().studies)
    response = app.test_client().post(
        "/screenings?wait=true", json={"patients": ["Patient/42"], "asOf": "2026-11-15",
                                       "studies": [keys[0]]}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["result"]["patient"] == "Patient/42"
    assert [s["study"] for s in body["result"]["studies"]] == [keys[0]]
    assert body["researchSubjects"] == {keys[0]: f"ResearchSubject/{keys[0]}-42"}
    assert screener.calls == [("screen", "42", date(2026, 11, 15), (keys[0],))]


def test_wait_true_maps_fhir_errors(make_app):
    app, screener = make_app()
    screener.errors["42"] = FhirNotFound("gone", status=404)
    assert_problem(app.test_client().post("/screenings?wait=true", json={"patients": ["42"]}), 404)


def test_wait_true_with_several_patients_is_400(make_app):
    app, screener = make_app()
    response = app.test_client().post("/screenings?wait=true", json={"patients": ["1", "2"]})
    assert_problem(response, 400)
    assert screener.calls == []


def test_batch_is_202_with_location_and_durable_status(make_app):
    app, screener = make_app()
    http = app.test_client()
    response = http.post("/screenings", json={"patients": ["1", "Patient/2", "1"],
                                              "asOf": "2026-11-15"})
    assert response.status_code == 202
    location = response.headers["Location"]
    assert location.startswith("/screenings/")
    status = http.get(location).get_json()
    assert status["state"] == "queued"
    assert status["asOf"] == "2026-11-15"
    assert status["progress"] == {"total": 2, "done": 0, "failed": 0, "pending": 2}
    assert [p["patient"] for p in status["patients"]] == ["Patient/1", "Patient/2"]
    assert screener.calls == []  # acknowledged, not yet processed


def test_batch_runs_on_the_embedded_worker_and_reports_results(make_app):
    app, screener = make_app()
    screener.errors["404"] = FhirNotFound("no such patient", status=404)
    queue = app.extensions["eligibility"].queue
    http = app.test_client()
    response = http.post("/screenings", json={"patients": ["1", "2", "404"],
                                              "asOf": "2026-11-15"})
    queue.start_embedded(2)
    location = response.headers["Location"]
    status = wait_until(
        lambda: (s := http.get(location).get_json())["state"] == "done" and s, what="job done"
    )
    assert status["progress"] == {"total": 3, "done": 2, "failed": 1, "pending": 0}
    by_patient = {p["patient"]: p for p in status["patients"]}
    assert by_patient["Patient/404"]["state"] == "failed"
    assert "not found" in by_patient["Patient/404"]["error"]
    for pid in ("1", "2"):
        entry = by_patient[f"Patient/{pid}"]
        assert entry["state"] == "done"
        assert entry["result"]["patient"] == f"Patient/{pid}"
        assert set(entry["researchSubjects"]) == set(real_mappings().studies)
    assert sorted(c[1] for c in screener.calls) == ["1", "2", "404"]
    assert all(c[0] == "screen" and c[2] == date(2026, 11, 15) for c in screener.calls)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"patients": []}',
        b'{"patients": "1"}',
        b'{"patients": ["bad id"]}',
        b'{"patients": [1]}',
        b'{"patients": ["1"], "extra": true}',
        b'{"patients": ["1"], "studies": ["nope"]}',
        b'{"patients": ["1"], "studies": "x"}',
        b'{"patients": ["1"], "asOf": "2026-02-30"}',
        b'{"patients": ["1"], "asOf": 20260101}',
        b"",
    ],
)
def test_malformed_screening_bodies_are_400(make_app, body):
    app, screener = make_app()
    response = app.test_client().post("/screenings", data=body,
                                      content_type="application/json")
    assert_problem(response, 400)
    assert screener.calls == []


@pytest.mark.parametrize("job", ["0" * 32, "not-a-job", "../etc"])
def test_unknown_job_is_404(http, job):
    assert_problem(http.get(f"/screenings/{job}"), 404)
