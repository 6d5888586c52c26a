"""Logs leak nothing: the seed patients are loaded into a local FHIR server and screened through
the REST API (read-only, batch job, wait=true, webhook, notification, CDS Hooks reading the
allow-listed server) and the CLI (`screen --all`), with every logger at DEBUG and every secret
configured. Then every captured log line (caplog, the CLI's stderr, and its stdout too) is
scanned for the seed Patients' names, birth dates and record numbers and for the secrets:
none may appear. Patient ids may, and must (they show the scan read the real run's logs)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localfhir import LocalServer
from service.core.settings import REPO_ROOT, Settings
from service.fhir.client import FhirClient
from service.usecases.seeding import load_seeds
from service.web.webhooks import sign
from tests.support.log_scan import forbidden, seed_patients
from tests.support.seed_population import AS_OF, SEEDS_DIR, mappings
from tests.support.server_state import wait_until

pytestmark = [pytest.mark.security, pytest.mark.slow]

SECRETS = {
    "ELIGIBILITY_API_TOKEN": "api-token-must-not-be-logged-7f3a9c",
    "WEBHOOK_SECRET": "webhook-secret-must-not-be-logged-51be",
    "FHIR_NOTIFY_SECRET": "notify-secret-must-not-be-logged-a0d2",
    "FHIR_BEARER_TOKEN": "fhir-bearer-token-must-not-be-logged-c9e4",
}
CDS_ACCESS_TOKEN = "cds-access-token-must-not-be-logged-66b1"
NEVER_LOGGED = {**SECRETS, "CDS access token": CDS_ACCESS_TOKEN}


@pytest.fixture
def seeded(fresh_fhir_server: LocalServer) -> LocalServer:
    """A server of this test's own holding the seeds only (so `screen --all` screens them)."""
    with FhirClient(Settings().with_overrides(fhir_base_url=fresh_fhir_server.base_url)) as c:
        load_seeds(c, SEEDS_DIR, mappings=mappings())
    return fresh_fhir_server


@pytest.fixture
def app(make_app, seeded: LocalServer, tmp_path: Path) -> Iterator[Any]:
    settings = Settings().with_overrides(
        fhir_base_url=seeded.base_url, fhir_auth="bearer",
        fhir_bearer_token=SECRETS["FHIR_BEARER_TOKEN"],
        api_tokens=(SECRETS["ELIGIBILITY_API_TOKEN"],),
        webhook_secret=SECRETS["WEBHOOK_SECRET"], notify_secret=SECRETS["FHIR_NOTIFY_SECRET"],
        queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}", coalesce_seconds=0.0,
        cds_jwt_required=False, cds_allowed_fhir_servers=(seeded.base_url,), log_level="DEBUG",
    )
    made, _ = make_app(settings)
    yield made


def _rest_run(app: Any, base_url: str, pids: list[str]) -> None:
    """Every REST surface over the seed patients, until every screening it queued is done."""
    http = app.test_client()
    api = {"Authorization": f"Bearer {SECRETS['ELIGIBILITY_API_TOKEN']}"}
    for pid in pids:
        assert http.get(f"/patients/{pid}/eligibility?asOf={AS_OF}", headers=api).status_code \
            == 200
    job = http.post("/screenings", headers=api,
                    json={"patients": pids, "asOf": AS_OF.isoformat()}).get_json()["job"]
    queue = app.extensions["eligibility"].queue
    queue.start_embedded(2)
    status = wait_until(lambda: (s := queue.job_status(job))["state"] == "done" and s,
                        timeout=120, what="the seed batch done")
    assert status["progress"]["done"] == len(pids)
    assert http.post("/screenings?wait=true", headers=api,
                     json={"patients": [pids[0]], "asOf": AS_OF.isoformat()}).status_code == 200
    body = json.dumps({"patient": pids[1]}).encode()
    stamp = str(int(time.time()))
    signature = sign(SECRETS["WEBHOOK_SECRET"], stamp, body)
    hooked = http.post("/webhooks/screening", data=body, headers={
        **api, "X-Timestamp": stamp, "X-Signature": signature,
        "Content-Type": "application/json"})
    assert hooked.status_code == 202
    observation = {"resourceType": "Observation", "id": "log-obs", "status": "final",
                   "code": {"text": "x"}, "subject": {"reference": f"Patient/{pids[2]}"}}
    notified = http.put("/fhir-notify/Observation/log-obs", data=json.dumps(observation),
                        headers={"Authorization": f"Bearer {SECRETS['FHIR_NOTIFY_SECRET']}",
                                 "Content-Type": "application/fhir+json"})
    assert notified.status_code == 200
    notified_job = re.search(r"job ([0-9a-f]{32})", notified.get_data(as_text=True))
    assert notified_job
    wrong = http.get("/studies", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    hook = {"hook": "patient-view", "hookInstance": uuid.uuid4().hex,
            "context": {"userId": "Practitioner/1", "patientId": pids[3]},
            "fhirServer": base_url,
            "fhirAuthorization": {"access_token": CDS_ACCESS_TOKEN, "token_type": "Bearer",
                                  "expires_in": 300, "scope": "patient/*.read",
                                  "subject": "cds"}}
    assert http.post("/cds-services/trial-eligibility", headers=api, json=hook).status_code \
        == 200
    triggered = [hooked.get_json()["job"], notified_job.group(1)]
    wait_until(lambda: all(queue.job_status(j)["state"] == "done" for j in triggered),
               what="the triggered screenings done")


def _cli_run(base_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **SECRETS, "FHIR_BASE_URL": base_url, "FHIR_AUTH": "bearer",
           "LOG_LEVEL": "DEBUG", "QUEUE_URL": f"sqlite:///{tmp_path / 'cli.sqlite'}",
           "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "service.cli.main", "screen", "--all", "--as-of", AS_OF.isoformat(),
         "--workers", "4"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_logs_of_the_seed_run_hold_no_names_birth_dates_record_numbers_or_secrets(
    app, seeded, caplog, tmp_path
):
    caplog.set_level(logging.DEBUG)
    pids = [p["id"] for p in seed_patients()]
    _rest_run(app, seeded.base_url, pids)
    cli = _cli_run(seeded.base_url, tmp_path)
    assert cli.returncode == 0, cli.stderr[-2000:]

    captured = {"log": caplog.text, "CLI stderr": cli.stderr, "CLI stdout": cli.stdout}
    # The scan read real, detailed logs of this run: DEBUG lines and every patient's id.
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    assert " DEBUG " in cli.stderr
    for pid in pids:
        assert f"Patient/{pid}" in caplog.text and pid in cli.stderr + cli.stdout

    patterns = forbidden(NEVER_LOGGED)
    found = []
    for where, text in captured.items():
        for line in text.splitlines():
            for what, pattern in patterns.items():
                if pattern.search(line):
                    found.append(f"{where}: {what}: {line[:200]}")
    assert found == []


def test_fhir_server_error_messages_are_neither_logged_nor_answered(
    make_app, proxy, population, caplog, tmp_path
):
    # A FHIR server's OperationOutcome may quote a record (HAPI validation messages do): the
    # service passes on the status, never the text, in its logs and in every answer.
    caplog.set_level(logging.DEBUG)
    [pid] = population.add(1)
    patient = population.bundles[pid]["entry"][0]["resource"]
    name = patient["name"][0]["text"]
    quoted = f"Patient {name} born {patient['birthDate']} does not validate"
    settings = Settings().with_overrides(
        fhir_base_url=proxy.base_url, queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
        fhir_max_retries=0, coalesce_seconds=0.0)
    app, _ = make_app(settings)
    try:
        http = app.test_client()
        proxy.inject("fail", status=422, diagnostics=quoted, when=lambda s: s.method == "POST")
        answers = [
            http.get(f"/patients/{pid}/eligibility?asOf={AS_OF}"),
            http.post("/screenings?wait=true", json={"patients": [pid],
                                                     "asOf": AS_OF.isoformat()}),
        ]
        job = http.post("/screenings", json={"patients": [pid], "asOf": AS_OF.isoformat()})
        queue = app.extensions["eligibility"].queue
        queue.start_embedded(1)
        status = wait_until(lambda: (s := queue.job_status(job.get_json()["job"]))["state"]
                            == "done" and s, what="the job failed")
        answers.append(http.get(job.headers["Location"]))
    finally:
        app.extensions["eligibility"].queue.stop()
    assert [a.status_code for a in answers] == [502, 502, 200]
    assert status["patients"][0]["state"] == "failed"
    assert "422" in status["patients"][0]["error"]
    assert proxy.requests("fail")
    for text in [*(a.get_data(as_text=True) for a in answers), caplog.text]:
        assert name not in text and patient["birthDate"] not in text
        assert "does not validate" not in text
