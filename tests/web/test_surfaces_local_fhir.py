"""End to end against the local FHIR server with the seeds: REST, queue, triggers, CDS Hooks,
CLI, `eligibility serve` and gunicorn."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import requests

from service.cli import main as cli
from service.core.settings import REPO_ROOT, Settings
from service.fhir.client import FhirClient
from service.fhir.research_subject import RESEARCH_SUBJECT_SYSTEM
from service.fhir.subscriptions import SUBSCRIBED_TYPES, subscription_criteria
from service.mappings import load_mappings
from service.usecases.screening import screen_patient
from service.usecases.seeding import load_seeds
from tests.support.fakes import free_port, wait_until

pytestmark = pytest.mark.integration

MANIFEST = json.loads((REPO_ROOT / "seeds" / "manifest.json").read_text())
AS_OF = date.fromisoformat(MANIFEST["asOf"])
SEEDS = ["seed-potential", "seed-ln-eligible", "seed-sle-eligible", "seed-hb-59"]
NOTIFY_SECRET = "notify-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def seeded(fhir_server) -> str:
    """The session server with the seeds loaded (idempotent); returns its base URL."""
    settings = Settings().with_overrides(fhir_base_url=fhir_server.base_url)
    with FhirClient(settings) as client:
        load_seeds(client, REPO_ROOT / "seeds", mappings=load_mappings(settings.mappings_dir))
    return fhir_server.base_url


@pytest.fixture
def live_app(make_app, seeded, fhir_settings):
    settings = fhir_settings.with_overrides(
        notify_secret=NOTIFY_SECRET, coalesce_seconds=0.0,
        cds_allowed_fhir_servers=(seeded,), cds_jwt_required=False,
    )
    app, _ = make_app(settings)
    yield app


def subjects_of(settings: Settings, pid: str) -> dict[str, dict]:
    mappings = load_mappings(settings.mappings_dir)
    tokens = ",".join(f"{RESEARCH_SUBJECT_SYSTEM}|{k}/{pid}" for k in mappings.studies)
    with FhirClient(settings) as client:
        found = list(client.search("ResearchSubject", {"identifier": tokens}))
    return {r["id"]: r for r in found}


@pytest.mark.parametrize("pid", SEEDS)
def test_eligibility_matches_the_library_and_writes_nothing(live_app, pid):
    settings = live_app.extensions["eligibility"].settings
    before = subjects_of(settings, pid)
    response = live_app.test_client().get(f"/patients/{pid}/eligibility?asOf={AS_OF}")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    with FhirClient(settings) as client:
        direct = screen_patient(client, load_mappings(settings.mappings_dir), pid,
                                as_of=AS_OF, write=False)
    assert body == direct.evaluation.to_json(direct.research_studies)
    assert body["patient"] == f"Patient/{pid}" and body["asOf"] == AS_OF.isoformat()
    assert all(s["researchStudy"].startswith("ResearchStudy/") for s in body["studies"])
    after = subjects_of(settings, pid)
    assert {k: v["meta"].get("versionId") for k, v in after.items()} == {
        k: v["meta"].get("versionId") for k, v in before.items()}


def test_unknown_patient_is_404(live_app):
    response = live_app.test_client().get("/patients/no-such-patient-zz/eligibility")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_unreachable_fhir_server_is_503_with_retry_after(make_app, seeded, fhir_settings):
    settings = fhir_settings.with_overrides(
        fhir_base_url=f"http://127.0.0.1:{free_port()}/fhir", fhir_max_retries=0)
    app, _ = make_app(settings)
    http = app.test_client()
    response = http.get("/patients/seed-potential/eligibility")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    ready = http.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["fhir"] != "ok"


def test_readyz_against_the_real_server(live_app):
    response = live_app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"fhir": "ok", "mappings": "ok", "queue": "ok"}


def test_wait_screening_writes_research_subjects_idempotently(live_app):
    settings = live_app.extensions["eligibility"].settings
    http = live_app.test_client()
    body = {"patients": ["seed-potential"], "asOf": AS_OF.isoformat()}
    first = http.post("/screenings?wait=true", json=body)
    assert first.status_code == 200, first.get_data(as_text=True)
    answer = first.get_json()
    refs = answer["researchSubjects"]
    assert set(refs) == {s["study"] for s in answer["result"]["studies"]}
    stored = subjects_of(settings, "seed-potential")
    assert {f"ResearchSubject/{i}" for i in stored} == set(refs.values())
    for study in answer["result"]["studies"]:
        resource = stored[refs[study["study"]].split("/")[1]]
        assert resource["individual"]["reference"].endswith("Patient/seed-potential")
        assert resource["study"]["reference"] == study["researchStudy"]
    again = http.post("/screenings?wait=true", json=body).get_json()
    assert again["researchSubjects"] == refs
    assert len(subjects_of(settings, "seed-potential")) == len(refs)


def test_batch_job_runs_on_the_embedded_worker(live_app):
    queue = live_app.extensions["eligibility"].queue
    http = live_app.test_client()
    response = http.post("/screenings", json={"patients": ["seed-ln-eligible", "seed-hb-59",
                                                           "no-such-patient-zz"],
                                              "asOf": AS_OF.isoformat()})
    assert response.status_code == 202
    queue.start_embedded(2)
    status = wait_until(
        lambda: (s := http.get(response.headers["Location"]).get_json())["state"] == "done"
        and s, timeout=120, what="batch done")
    by_patient = {p["patient"]: p for p in status["patients"]}
    assert by_patient["Patient/no-such-patient-zz"]["state"] == "failed"
    for pid in ("seed-ln-eligible", "seed-hb-59"):
        entry = by_patient[f"Patient/{pid}"]
        assert entry["state"] == "done", entry
        assert entry["result"]["asOf"] == AS_OF.isoformat()
        assert set(entry["researchSubjects"]) == {s["study"] for s in entry["result"]["studies"]}


def test_fhir_notification_leads_to_a_screening(live_app):
    queue = live_app.extensions["eligibility"].queue
    http = live_app.test_client()
    observation = {"resourceType": "Observation", "id": "notify-obs-1", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                   "subject": {"reference": "Patient/seed-sle-eligible"},
                   "valueQuantity": {"value": 11, "unit": "g/dL",
                                     "system": "http://unitsofmeasure.org", "code": "g/dL"}}
    response = http.put("/fhir-notify/Observation/notify-obs-1", data=json.dumps(observation),
                        headers={"Authorization": f"Bearer {NOTIFY_SECRET}",
                                 "Content-Type": "application/fhir+json"})
    assert response.status_code == 200
    job = response.get_json()["issue"][0]["diagnostics"].split("(job ")[1].rstrip(")")
    queue.start_embedded(1)
    status = wait_until(lambda: (s := queue.job_status(job))["state"] == "done" and s,
                        timeout=120, what="notified screening done")
    entry = status["patients"][0]
    assert entry["state"] == "done", entry
    assert entry["researchSubjects"]


def test_cds_hook_reads_the_allow_listed_server(live_app, seeded):
    live_app.extensions["eligibility"].clock.as_of = AS_OF
    http = live_app.test_client()
    body = {"hookInstance": "9a1b", "hook": "patient-view", "fhirServer": seeded,
            "context": {"userId": "Practitioner/1", "patientId": "seed-ln-eligible"}}
    response = http.post("/cds-services/trial-eligibility", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    evaluation = http.get(f"/patients/seed-ln-eligible/eligibility?asOf={AS_OF}").get_json()
    wanted = [s["study"] for s in evaluation["studies"]
              if s["status"] in ("eligible", "potential-candidate")]
    assert [c["links"][0]["url"].rsplit("#study-", 1)[1] for c in cards] == wanted


def _our_subscriptions(settings: Settings) -> dict[str, dict]:
    with FhirClient(settings) as client:
        subs = list(client.search("Subscription", {}))
    return {t["code"]: s for s in subs for t in (s.get("meta") or {}).get("tag", [])
            if t.get("system") == "urn:trial-eligibility:subscription"}


def test_subscribe_is_idempotent_and_follows_a_mapping_change(
        seeded, fhir_settings, monkeypatch, capsys):
    monkeypatch.setenv("FHIR_BASE_URL", seeded)
    monkeypatch.setenv("FHIR_NOTIFY_SECRET", NOTIFY_SECRET)
    monkeypatch.setenv("PUBLIC_URL", "http://127.0.0.1:8000")
    # The local server never activates Subscriptions (HAPI does: tests/web/test_trigger_hapi.py).
    monkeypatch.setenv("MAPPINGS_DIR", "mappings:mappings/conformance")
    assert cli.main(["subscribe", "--no-wait"]) == 0
    wider = _our_subscriptions(fhir_settings)
    monkeypatch.setenv("MAPPINGS_DIR", "mappings")
    assert cli.main(["subscribe", "--no-wait"]) == 0
    assert cli.main(["subscribe", "--no-wait"]) == 0
    capsys.readouterr()
    ours = _our_subscriptions(fhir_settings)
    wanted = subscription_criteria(load_mappings(REPO_ROOT / "mappings"))
    assert sorted(ours) == sorted(tag for _, tag, _ in wanted)  # no doubles, none left over
    assert {t.split("-")[0] for t in ours} == set(SUBSCRIBED_TYPES)
    assert {tag: s["criteria"] for tag, s in ours.items()} == {t: c for _, t, c in wanted}
    # The conformance study reads more codes: its subscription criteria were wider, and
    # subscribing again without it narrowed them.
    joined = ",".join(s["criteria"] for t, s in wider.items() if t.startswith("Observation"))
    assert len(joined) > len(",".join(
        s["criteria"] for t, s in ours.items() if t.startswith("Observation")))
    assert all(s["channel"]["endpoint"] == "http://127.0.0.1:8000/fhir-notify"
               for s in ours.values())


def test_cli_screen_against_the_server(seeded, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FHIR_BASE_URL", seeded)
    monkeypatch.setenv("QUEUE_URL", f"sqlite:///{tmp_path / 'q.sqlite'}")
    code = cli.main(["screen", "seed-potential", "seed-gilbert", "--as-of", AS_OF.isoformat(),
                     "--no-write", "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["patient"] for r in rows] == ["Patient/seed-potential", "Patient/seed-gilbert"]
    checkpoint = tmp_path / "done.txt"
    code = cli.main(["screen", "--all", "--no-write", "--csv", "--as-of", AS_OF.isoformat(),
                     "--workers", "4", "--checkpoint", str(checkpoint)])
    assert code == 0
    out = capsys.readouterr().out
    done = set(checkpoint.read_text().split())
    assert {"seed-potential", "seed-gilbert", "seed-ln-eligible"} <= done
    assert out.count("\n") - 1 == 2 * len(done)  # one CSV line per patient and study


def _env(seeded: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "FHIR_BASE_URL": seeded, "QUEUE_URL": f"sqlite:///{tmp_path}/q.db",
            "PYTHONPATH": str(REPO_ROOT), **extra}


def _as_from_a_terminal() -> None:
    """In the child: SIGINT as a terminal gives it. A background job of a non-interactive shell
    (`.ci/run &`) starts with SIGINT ignored, which Python then keeps, so Ctrl-C would never
    reach the server under test."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stopped(proc: subprocess.Popen, log: Path) -> int:
    """The exit code of a process told to stop; fails with its log's tail if it does not."""
    try:
        # A graceful stop finishes the task in hand (a few seconds); 60 s leaves room to spare.
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail("did not stop within 60 s of Ctrl-C; its log ends:\n"
                    + log.read_text(errors="replace")[-3000:])


@pytest.mark.slow
def test_eligibility_serve_answers_and_stops_on_ctrl_c(seeded, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"  # a file, not an unread pipe that could fill and block it
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli.main", "serve", "--port", str(port)],
        env=_env(seeded, tmp_path, FHIR_WAIT_SECONDS="10"), cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL, stderr=log.open("w"), preexec_fn=_as_from_a_terminal)
    try:
        base = f"http://127.0.0.1:{port}"

        def ready():
            try:
                return requests.get(f"{base}/readyz", timeout=2).status_code == 200
            except (requests.ConnectionError, requests.Timeout):  # booting, or a loaded machine
                return False

        wait_until(ready, timeout=60, what="serve ready")
        studies = requests.get(f"{base}/studies", timeout=5).json()["studies"]
        assert {s["study"] for s in studies} >= {"refractory-sle-cart", "pediatric-ln-cart"}
        proc.send_signal(signal.SIGINT)
        assert _stopped(proc, log) in (0, 130, -signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_gunicorn_serves_the_wsgi_app(seeded, tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:service.web.gunicorn_conf",
         "service.web.wsgi:build()"],
        env=_env(seeded, tmp_path, BIND=f"127.0.0.1:{port}"), cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def healthy():
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok
            except (requests.ConnectionError, requests.Timeout):  # booting, or a loaded machine
                return False

        wait_until(healthy, timeout=60, what="gunicorn up")
        answer = requests.get(f"http://127.0.0.1:{port}/patients/bad_id/eligibility", timeout=5)
        assert answer.status_code == 400
        assert answer.headers["Content-Type"] == "application/problem+json"
    finally:
        proc.terminate()
        proc.wait(30)


def test_gunicorn_refuses_a_public_bind_without_token(seeded, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "python:service.web.gunicorn_conf",
         "service.web.wsgi:build()"],
        env=_env(seeded, tmp_path, BIND="0.0.0.0:1"), cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "refusing to listen on 0.0.0.0:1" in proc.stderr


@pytest.mark.slow
def test_demo_loads_screens_prints_and_serves(seeded, tmp_path):
    import threading

    port = free_port()
    log = tmp_path / "demo.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli.main", "demo", "--port", str(port)],
        env=_env(seeded, tmp_path), cwd=REPO_ROOT, text=True,
        stdout=subprocess.PIPE, stderr=log.open("w"), preexec_fn=_as_from_a_terminal)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        def serving():
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok
            except (requests.ConnectionError, requests.Timeout):  # booting, or a loaded machine
                return proc.poll() is not None  # stop waiting if it died

        wait_until(serving, timeout=180, what="demo serving")
        assert proc.poll() is None, "".join(lines)
        proc.send_signal(signal.SIGINT)
        _stopped(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    out = "".join(lines)
    assert f"as of {AS_OF.isoformat()}" in out
    for entry in MANIFEST["patients"]:
        assert Path(entry).stem in out  # every seed patient is in the table
    assert "ResearchSubject written" in out  # the summary says what the demo wrote
    assert f"http://127.0.0.1:{port}/patients/" in out
