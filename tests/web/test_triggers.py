"""EHR triggers: HAPI-shaped rest-hook notifications and the signed webhook."""

from __future__ import annotations

import json
import time

import pytest

from service.web.webhooks import sign

SECRET = "notify-secret-0123456789abcdef"
HOOK_SECRET = "webhook-secret-0123456789abcdef"
API_TOKEN = "api-token-0123456789abcdef0123"
FHIR_JSON = "application/fhir+json"


def observation(pid: str = "p1", **extra) -> dict:
    return {
        "resourceType": "Observation", "id": "obs-1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": 10.1, "unit": "g/dL"},
        **extra,
    }


def notify_headers(secret: str = SECRET) -> dict:
    return {"Authorization": f"Bearer {secret}", "Content-Type": FHIR_JSON}


def jobs_of(app) -> list[dict]:
    store = app.extensions["eligibility"].queue.store
    queue = app.extensions["eligibility"].queue
    ids = {t.args[0] for t in [*queue.huey.pending(), *queue.huey.scheduled()]}
    return [store.get_task(i) for i in ids]


def assert_outcome(response, status: int, severity: str) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    body = response.get_json(force=True)
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == severity
    return body["issue"][0]["diagnostics"]


@pytest.fixture
def notify_app(make_app):
    app, _ = make_app(notify_secret=SECRET, api_tokens=(API_TOKEN,))
    return app


# ------------------------------------------------------------------------------ rest-hook


def test_put_with_payload_queues_the_subject_patient(notify_app):
    http = notify_app.test_client()
    response = http.put("/fhir-notify/Observation/obs-1", data=json.dumps(observation("p1")),
                        headers=notify_headers())
    text = assert_outcome(response, 200, "information")
    assert "Patient/p1" in text
    tasks = jobs_of(notify_app)
    assert [(t.patient, t.source) for t in tasks] == [("p1", "fhir-notify:Observation")]


@pytest.mark.parametrize(
    ("rtype", "resource", "patient"),
    [
        ("Patient", {"resourceType": "Patient", "id": "pat-9"}, "pat-9"),
        ("Condition", {"resourceType": "Condition", "id": "c1",
                       "subject": {"reference": "http://127.0.0.1:8090/fhir/Patient/abs-1"}},
         "abs-1"),
        ("MedicationRequest", {"resourceType": "MedicationRequest", "id": "m1",
                               "status": "active", "intent": "order",
                               "medicationCodeableConcept": {"text": "prednisone"},
                               "subject": {"reference": "Patient/m-p/_history/3"}}, "m-p"),
        ("Procedure", {"resourceType": "Procedure", "id": "pr1", "status": "completed",
                       "subject": {"reference": "Patient/proc-p"}}, "proc-p"),
        ("MedicationStatement", {"resourceType": "MedicationStatement", "id": "ms1",
                                 "status": "active",
                                 "medicationCodeableConcept": {"text": "hydroxychloroquine"},
                                 "subject": {"reference": "Patient/ms-p"}}, "ms-p"),
    ],
)
def test_patient_found_from_each_subscribed_type(notify_app, rtype, resource, patient):
    response = notify_app.test_client().put(
        f"/fhir-notify/{rtype}/{resource['id']}", data=json.dumps(resource),
        headers=notify_headers(),
    )
    assert_outcome(response, 200, "information")
    assert [t.patient for t in jobs_of(notify_app)] == [patient]


def test_repeated_notifications_coalesce(make_app):
    app, _ = make_app(notify_secret=SECRET, coalesce_seconds=30.0)
    http = app.test_client()
    for _ in range(3):
        response = http.put("/fhir-notify/Observation/obs-1",
                            data=json.dumps(observation("p1")), headers=notify_headers())
        assert response.status_code == 200
    assert "joined a queued" in response.get_json()["issue"][0]["diagnostics"]
    assert len(jobs_of(app)) == 1


def test_post_without_payload_is_acknowledged_and_queues_nothing(notify_app, caplog):
    caplog.set_level("INFO")
    response = notify_app.test_client().post("/fhir-notify", headers=notify_headers())
    text = assert_outcome(response, 200, "information")
    assert "cannot be known" in text
    assert jobs_of(notify_app) == []
    assert any("without payload" in r.getMessage() for r in caplog.records)


def test_post_with_a_resource_or_bundle_queues_its_patients(notify_app):
    http = notify_app.test_client()
    bundle = {"resourceType": "Bundle", "type": "history", "entry": [
        {"resource": observation("b1")}, {"resource": observation("b2")},
        {"resource": observation("b1")},
    ]}
    assert_outcome(http.post("/fhir-notify", data=json.dumps(bundle), headers=notify_headers()),
                   200, "information")
    assert sorted(t.patient for t in jobs_of(notify_app)) == ["b1", "b2"]


def test_delete_notification_is_acknowledged(notify_app):
    response = notify_app.test_client().delete("/fhir-notify/Observation/obs-1",
                                               headers=notify_headers())
    assert_outcome(response, 200, "information")
    assert jobs_of(notify_app) == []


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Bearer {API_TOKEN}"},
                                     {"Authorization": SECRET}])
def test_wrong_or_missing_secret_is_401(notify_app, headers):
    response = notify_app.test_client().put(
        "/fhir-notify/Observation/obs-1", data=json.dumps(observation()), headers=headers)
    assert_outcome(response, 401, "error")
    assert jobs_of(notify_app) == []


def test_notify_is_refused_when_no_secret_is_configured(make_app):
    app, _ = make_app()
    response = app.test_client().put("/fhir-notify/Observation/obs-1",
                                     data=json.dumps(observation()), headers=notify_headers())
    assert "FHIR_NOTIFY_SECRET" in assert_outcome(response, 401, "error")


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/fhir-notify/Observation/obs-1", "{not json", "not JSON"),
        ("/fhir-notify/Observation/obs-1", json.dumps([1]), "resourceType"),
        ("/fhir-notify/Observation/obs-1", json.dumps({"resourceType": "Condition"}),
         "the URL says Observation"),
        ("/fhir-notify/Observation/other", json.dumps(observation()), "differs"),
        ("/fhir-notify/Observation/obs-1", json.dumps(observation(code="718-7")),
         "not valid FHIR R4"),
        ("/fhir-notify/Observation/obs-1", json.dumps(observation(bogusField=1)),
         "not valid FHIR R4"),
        ("/fhir-notify/Basic/1", json.dumps({"resourceType": "Basic", "id": "1"}),
         "not a resource type"),
        ("/fhir-notify/Observation/bad_id", json.dumps(observation()), "not a FHIR id"),
    ],
)
def test_malformed_fhir_is_400_operation_outcome(notify_app, path, body, needle):
    response = notify_app.test_client().put(path, data=body, headers=notify_headers())
    assert needle in assert_outcome(response, 400, "error")
    assert jobs_of(notify_app) == []


@pytest.mark.parametrize(
    ("resource", "version"),
    [
        (observation(context={"reference": "Encounter/1"}), "STU3"),
        ({"resourceType": "Condition", "id": "c", "clinicalStatus": "active",
          "subject": {"reference": "Patient/p1"}}, "STU3"),
        ({"resourceType": "MedicationRequest", "id": "m", "status": "active",
          "intent": "order", "medication": {"concept": {"text": "x"}},
          "subject": {"reference": "Patient/p1"}}, "R5"),
    ],
)
def test_stu3_and_r5_resources_are_refused_clearly(notify_app, resource, version):
    rtype = resource["resourceType"]
    response = notify_app.test_client().put(
        f"/fhir-notify/{rtype}/{resource['id']}", data=json.dumps(resource),
        headers=notify_headers())
    text = assert_outcome(response, 400, "error")
    assert version in text and "R4" in text


def test_resource_not_about_a_patient_queues_nothing(notify_app):
    resource = observation()
    resource["subject"] = {"reference": "Group/g1"}
    response = notify_app.test_client().put("/fhir-notify/Observation/obs-1",
                                            data=json.dumps(resource), headers=notify_headers())
    assert "does not reference a Patient" in assert_outcome(response, 200, "information")
    assert jobs_of(notify_app) == []


# ------------------------------------------------------------------------------ webhook


def signed(body: bytes, *, secret: str = HOOK_SECRET, age: int = 0) -> dict:
    timestamp = str(int(time.time()) - age)
    return {"X-Timestamp": timestamp, "X-Signature": sign(secret, timestamp, body),
            "Content-Type": "application/json"}


@pytest.fixture
def hook_app(make_app):
    app, _ = make_app(webhook_secret=HOOK_SECRET)
    return app


def test_signed_webhook_queues_a_screening(hook_app):
    body = b'{"patient": "Patient/w1"}'
    response = hook_app.test_client().post("/webhooks/screening", data=body,
                                           headers=signed(body))
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["patient"] == "Patient/w1" and answer["coalesced"] is False
    assert response.headers["Location"] == f"/screenings/{answer['job']}"
    assert [(t.patient, t.source) for t in jobs_of(hook_app)] == [("w1", "webhook")]
    status = hook_app.test_client().get(response.headers["Location"])
    assert status.get_json()["patients"][0]["patient"] == "Patient/w1"


def test_signature_recipe_matches_an_independent_computation():
    import hashlib
    import hmac

    body, ts = b'{"patient": "1"}', "1700000000"
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k", ts, body) == f"sha256={expected}"


@pytest.mark.parametrize(
    "tamper",
    ["wrong-secret", "body-changed", "timestamp-changed", "old", "future", "no-signature",
     "no-timestamp", "not-hex"],
)
def test_bad_or_replayed_signatures_are_401(hook_app, tamper):
    body = b'{"patient": "w1"}'
    headers = signed(body)
    if tamper == "wrong-secret":
        headers = signed(body, secret="another-secret")
    elif tamper == "body-changed":
        body = b'{"patient": "w2"}'
    elif tamper == "timestamp-changed":
        headers["X-Timestamp"] = str(int(headers["X-Timestamp"]) - 1)
    elif tamper == "old":
        headers = signed(body, age=301)
    elif tamper == "future":
        headers = signed(body, age=-301)
    elif tamper == "no-signature":
        del headers["X-Signature"]
    elif tamper == "no-timestamp":
        del headers["X-Timestamp"]
    elif tamper == "not-hex":
        headers["X-Signature"] = "sha256=zz"
    response = hook_app.test_client().post("/webhooks/screening", data=body, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert jobs_of(hook_app) == []


def test_a_signature_within_the_window_is_accepted(hook_app):
    body = b'{"patient": "w1"}'
    response = hook_app.test_client().post("/webhooks/screening", data=body,
                                           headers=signed(body, age=250))
    assert response.status_code == 202


@pytest.mark.parametrize("body", [b'{"patient": "bad id"}', b'{"patient": 1}', b"[]",
                                  b'{"patient": "1", "x": 2}', b"nope"])
def test_signed_but_malformed_bodies_are_400(hook_app, body):
    response = hook_app.test_client().post("/webhooks/screening", data=body,
                                           headers=signed(body))
    assert response.status_code == 400
    assert jobs_of(hook_app) == []


def test_webhook_disabled_without_secret(make_app):
    app, _ = make_app()
    body = b'{"patient": "1"}'
    response = app.test_client().post("/webhooks/screening", data=body, headers=signed(body))
    assert response.status_code == 401
    assert "WEBHOOK_SECRET" in response.get_json()["detail"]


def test_webhook_also_needs_the_api_token_when_one_is_set(make_app):
    app, _ = make_app(webhook_secret=HOOK_SECRET, api_tokens=(API_TOKEN,))
    body = b'{"patient": "1"}'
    http = app.test_client()
    assert http.post("/webhooks/screening", data=body, headers=signed(body)).status_code == 401
    headers = {**signed(body), "Authorization": f"Bearer {API_TOKEN}"}
    assert http.post("/webhooks/screening", data=body, headers=headers).status_code == 202
