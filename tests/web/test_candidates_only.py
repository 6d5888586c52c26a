"""Who gets a ResearchSubject (api.md), on every path that writes, against the local FHIR server:
a patient without a diagnosis a study looks for gets none (the answer says `not-a-candidate`);
a new diagnosis makes them a candidate at the next trigger; a deceased patient never gets a
new one, and an existing one keeps its workflow status and gets the computed `ineligible`."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from service.cli import main as cli
from service.core.settings import Settings
from service.fhir import research_subject as rs
from service.fhir.client import FhirClient
from service.web.webhooks import sign
from tests.support.fakes import wait_until
from tests.support.workspace import AS_OF, COORDINATOR

pytestmark = pytest.mark.integration

NOTIFY_SECRET = "notify-secret-0123456789abcdef"
HOOK_SECRET = "webhook-secret-for-candidate-tests-01"
STUDIES = ("refractory-sle-cart", "pediatric-ln-cart")
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_STAMPS: list[int] = []  # the timestamps signed so far, newest last


def _app(make_app: Any, server: Any, tmp_path: Any) -> Any:
    settings = Settings().with_overrides(
        fhir_base_url=server.base_url, queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
        notify_secret=NOTIFY_SECRET, webhook_secret=HOOK_SECRET, coalesce_seconds=0.0,
        users_db=tmp_path / "users.sqlite", screen_as_of=AS_OF, embedded_workers=0,
        session_secret="test-session-secret-" + "x" * 32)
    application, _ = make_app(settings)
    return application


@pytest.fixture
def app(make_app: Any, fhir_server: Any, tmp_path: Any) -> Iterator[Any]:
    yield _app(make_app, fhir_server, tmp_path)


@pytest.fixture
def fresh_app(make_app: Any, fresh_fhir_server: Any, tmp_path: Any) -> Iterator[Any]:
    """On a server of its own: the worklist shows its few rows on one page."""
    yield _app(make_app, fresh_fhir_server, tmp_path)


def _client(app: Any) -> FhirClient:
    return FhirClient(app.extensions["eligibility"].settings)


def _put(client: FhirClient, resource: dict[str, Any]) -> None:
    client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": resource,
         "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}]})


def _coded(rtype: str, rid: str, pid: str, system: str, code: str, **extra: Any) -> dict:
    return {"resourceType": rtype, "id": rid, "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": system, "code": code}]}, **extra}


def a_child(app: Any, *, deceased: dict[str, Any] | None = None) -> str:
    """A 12-year-old with a heart rate, a haemoglobin and asthma: no study's diagnosis."""
    pid = f"cand-{uuid.uuid4().hex[:10]}"
    with _client(app) as client:
        _put(client, {"resourceType": "Patient", "id": pid, "gender": "female",
                      "birthDate": "2014-03-01", **(deceased or {})})
        _put(client, _coded("Observation", f"{pid}-hr", pid, "http://loinc.org", "8867-4",
                            status="final", effectiveDateTime="2026-11-10",
                            valueQuantity={"value": 92, "unit": "/min",
                                           "system": "http://unitsofmeasure.org",
                                           "code": "/min"}))
        _put(client, _coded("Observation", f"{pid}-hb", pid, "http://loinc.org", "718-7",
                            status="final", effectiveDateTime="2026-11-10",
                            valueQuantity={"value": 120, "unit": "g/L",
                                           "system": "http://unitsofmeasure.org",
                                           "code": "g/L"}))
        _put(client, _coded("Condition", f"{pid}-asthma", pid,
                            "http://hl7.org/fhir/sid/icd-10-cm", "J45.909"))
    return pid


def diagnose_lupus(app: Any, pid: str) -> dict[str, Any]:
    condition = _coded("Condition", f"{pid}-sle", pid, "http://snomed.info/sct", "55464009",
                       clinicalStatus={"coding": [{
                           "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                           "code": "active"}]})
    with _client(app) as client:
        _put(client, condition)
    return condition


def ours(app: Any, pid: str) -> dict[str, dict[str, Any]]:
    """Our stored ResearchSubjects of the patient by study key."""
    tokens = ",".join(f"{rs.RESEARCH_SUBJECT_SYSTEM}|{k}/{pid}" for k in STUDIES)
    with _client(app) as client:
        found = list(client.search("ResearchSubject", {"identifier": tokens}))
    return {r["identifier"][0]["value"].split("/")[0]: r for r in found}


def write_backs(result: dict[str, Any]) -> dict[str, str]:
    return {s["study"]: s.get("writeBack") for s in result["studies"]}


def finished(app: Any, job: str) -> dict[str, Any]:
    queue = app.extensions["eligibility"].queue
    queue.start_embedded(1)
    try:
        status = wait_until(lambda: (s := queue.job_status(job))["state"] == "done" and s,
                            timeout=120, what="screening done")
    finally:
        queue.stop()
    (entry,) = status["patients"]
    assert entry["state"] == "done", entry
    return entry


def notify(app: Any, resource: dict[str, Any]) -> str:
    """HAPI's rest-hook PUT of a changed resource; the job it queued."""
    answer = app.test_client().put(
        f"/fhir-notify/{resource['resourceType']}/{resource['id']}", data=json.dumps(resource),
        headers={"Authorization": f"Bearer {NOTIFY_SECRET}",
                 "Content-Type": "application/fhir+json"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()["issue"][0]["diagnostics"].split("(job ")[1].rstrip(")")


def webhook(app: Any, pid: str) -> str:
    body = json.dumps({"patient": pid}).encode()
    # A signature is accepted once, so the same body is never signed at the same second twice:
    # now, or a second after the previous call's stamp when that is now already (the server
    # accepts stamps up to 30 s ahead). Taken when sent: a stamp from the module's import goes
    # stale in a long suite, and "now minus a call counter" met itself a second later.
    _STAMPS.append(max(int(time.time()), _STAMPS[-1] + 1) if _STAMPS else int(time.time()))
    stamp = str(_STAMPS[-1])
    answer = app.test_client().post("/webhooks/screening", data=body, headers={
        "X-Timestamp": stamp, "X-Signature": sign(HOOK_SECRET, stamp, body),
        "Content-Type": "application/json"})
    assert answer.status_code == 202, answer.get_data(as_text=True)
    return answer.get_json()["job"]


def trigger(app: Any, how: str, pid: str) -> dict[str, Any]:
    """Trigger a screening of `pid` by `how` and return its finished job entry."""
    if how == "fhir-notify":
        with _client(app) as client:
            resource = client.read("Observation", f"{pid}-hb")
        return finished(app, notify(app, resource))
    return finished(app, webhook(app, pid))


@pytest.mark.parametrize("how", ["fhir-notify", "webhook"])
def test_a_trigger_writes_nothing_for_a_non_candidate_until_the_diagnosis_comes(app, how):
    pid = a_child(app)

    entry = trigger(app, how, pid)

    assert write_backs(entry["result"]) == dict.fromkeys(STUDIES, "not-a-candidate")
    assert entry["researchSubjects"] == {}
    assert ours(app, pid) == {}

    diagnose_lupus(app, pid)
    entry = trigger(app, how, pid)

    assert write_backs(entry["result"]) == dict.fromkeys(STUDIES, "created")
    stored = ours(app, pid)
    assert sorted(stored) == sorted(STUDIES)
    assert set(entry["researchSubjects"].values()) == {
        f"ResearchSubject/{r['id']}" for r in stored.values()}


def test_post_screenings_waits_and_queues_for_candidates_only(app):
    http = app.test_client()
    other, lupus = a_child(app), a_child(app)
    diagnose_lupus(app, lupus)

    answer = http.post("/screenings?wait=true", json={"patients": [other], "asOf": str(AS_OF)})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert write_backs(body["result"]) == dict.fromkeys(STUDIES, "not-a-candidate")
    assert body["researchSubjects"] == {} and ours(app, other) == {}

    queued = http.post("/screenings", json={"patients": [lupus], "asOf": str(AS_OF)})
    assert queued.status_code == 202
    entry = finished(app, queued.get_json()["job"])
    assert write_backs(entry["result"]) == dict.fromkeys(STUDIES, "created")
    assert sorted(ours(app, lupus)) == sorted(STUDIES)


def test_the_eligibility_answer_is_unchanged_for_a_non_candidate(app):
    pid = a_child(app)
    body = app.test_client().get(f"/patients/{pid}/eligibility?asOf={AS_OF}").get_json()
    assert [s["status"] for s in body["studies"]] == ["ineligible", "ineligible"]
    assert all("writeBack" not in s for s in body["studies"])
    assert ours(app, pid) == {}


def _signed_in(app: Any) -> Any:
    accounts = app.extensions["pages"].accounts
    if accounts.get(COORDINATOR[0]) is None:
        accounts.add(COORDINATOR[0], "coordinator", COORDINATOR[2], display=COORDINATOR[1])
    http = app.test_client()
    token = _TOKEN.search(http.get("/login").get_data(as_text=True)).group(1)
    answer = http.post("/login", data={"username": COORDINATOR[0],
                                       "password": COORDINATOR[2], "csrf_token": token})
    assert answer.status_code == 302
    return http


def _rescreen(http: Any, pid: str) -> str:
    page = http.get(f"/patients/{pid}").get_data(as_text=True)
    token = _TOKEN.search(page).group(1)
    answer = http.post(f"/patients/{pid}/screen", data={"csrf_token": token},
                       follow_redirects=True)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_the_pages_rescreen_writes_for_candidates_only(app):
    http = _signed_in(app)
    pid = a_child(app)

    _rescreen(http, pid)
    assert ours(app, pid) == {}

    diagnose_lupus(app, pid)
    _rescreen(http, pid)
    assert sorted(ours(app, pid)) == sorted(STUDIES)


def test_cli_screen_says_not_a_candidate(app, monkeypatch, capsys):
    settings = app.extensions["eligibility"].settings
    pid = a_child(app)
    monkeypatch.setenv("FHIR_BASE_URL", settings.fhir_base_url)
    assert cli.main(["screen", pid, "--json", "--as-of", str(AS_OF)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert write_backs(row["result"]) == dict.fromkeys(STUDIES, "not-a-candidate")
    assert "researchSubjects" not in row and ours(app, pid) == {}
    assert cli.main(["screen", pid, "--csv", "--as-of", str(AS_OF)]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.split(",")[3] for line in lines] == ["not-a-candidate"] * 2


# ------------------------------------------------------------------------------ deceased


def test_a_deceased_lupus_patient_gets_no_new_research_subject(app):
    pid = a_child(app, deceased={"deceasedDateTime": "2026-10-02"})
    diagnose_lupus(app, pid)

    entry = trigger(app, "webhook", pid)

    assert write_backs(entry["result"]) == dict.fromkeys(STUDIES, "not-a-candidate")
    for study in entry["result"]["studies"]:
        assert study["status"] == "ineligible"
        assert study["criteria"][0]["reason"] == "Excluded: deceased on 2026-10-02."
    assert ours(app, pid) == {}


def test_an_existing_subject_keeps_its_workflow_status_when_the_patient_dies(fresh_app):
    app = fresh_app
    pid = a_child(app)
    diagnose_lupus(app, pid)
    trigger(app, "webhook", pid)
    stored = ours(app, pid)["pediatric-ln-cart"]
    with _client(app) as client:  # a coordinator enrolled the child
        _put(client, {**stored, "status": "on-study"})
        patient = client.read("Patient", pid)
        _put(client, {**patient, "deceasedBoolean": True})

    entry = finished(app, notify(app, {**patient, "deceasedBoolean": True}))

    after = ours(app, pid)
    assert after["pediatric-ln-cart"]["status"] == "on-study"
    assert rs.computed_status(after["pediatric-ln-cart"]) == "ineligible"
    assert rs.computed_status(after["refractory-sle-cart"]) == "ineligible"
    assert write_backs(entry["result"])["pediatric-ln-cart"] == "updated"

    http = _signed_in(app)
    page = http.get(f"/patients/{pid}").get_data(as_text=True)
    assert '<span class="badge deceased">deceased</span>' in page
    worklist = http.get("/?study=pediatric-ln-cart&status=all").get_data(as_text=True)
    row = worklist.split(f">{pid}<", 1)[1].split("</tr>", 1)[0]
    before_row = worklist.split(f">{pid}<", 1)[0].rsplit("<tr", 1)[1]
    assert "deceased" in before_row + row


def test_a_notification_for_a_non_candidate_costs_one_read_and_no_write(app):
    """After the process found its ResearchStudies (once), a vital sign of a patient without
    a candidate diagnosis costs the FHIR server one request (the record's read batch)."""
    warm = a_child(app)
    trigger(app, "fhir-notify", warm)  # the first screening of the process finds the studies
    pid = a_child(app)
    client = app.extensions["eligibility"].screener.client()
    before = client.request_count

    with _client(app) as reader:
        heart_rate = reader.read("Observation", f"{pid}-hr")
    entry = finished(app, notify(app, heart_rate))

    assert client.request_count - before == 1
    assert write_backs(entry["result"]) == dict.fromkeys(STUDIES, "not-a-candidate")
    assert ours(app, pid) == {}
