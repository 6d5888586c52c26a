"""Logs under gunicorn, as production runs (issue 13, finding 4): 2 workers, every secret set.

The seed patients are screened through every REST surface over real HTTP; gunicorn's stderr is
then read line by line. Every service line has a UTC timestamp, the level, the logger and the
request id (the caller's X-Request-ID, or `job:<id>` for the queue's lines); INFO lines are
there ("feedback is logged" holds); nothing forged a line; and no line holds a seed patient's
name, birth date or record number, or a secret (the log-hygiene scan of
tests/web/test_log_hygiene.py, here against the real server's output). With LOG_FORMAT=json
every service line is one JSON object.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from localfhir import LocalServer
from service.core.settings import REPO_ROOT, Settings
from service.fhir.client import FhirClient
from service.mappings import load_mappings
from service.usecases.seeding import load_seeds
from service.web.webhooks import sign
from tests.support.log_scan import forbidden, seed_patients

pytestmark = [pytest.mark.security, pytest.mark.slow]

SEEDS_DIR = REPO_ROOT / "seeds"
AS_OF = json.loads((SEEDS_DIR / "manifest.json").read_text())["asOf"]
SECRETS = {
    "ELIGIBILITY_API_TOKEN": "api-token-must-not-be-logged-gunicorn-1",
    "WEBHOOK_SECRET": "webhook-secret-must-not-be-logged-gunicorn",
    "FHIR_NOTIFY_SECRET": "notify-secret-must-not-be-logged-gunicorn",
    "FHIR_BEARER_TOKEN": "fhir-bearer-must-not-be-logged-gunicorn",
}
CDS_ACCESS_TOKEN = "cds-access-token-must-not-be-logged-gunicorn"
NEVER_LOGGED = {**SECRETS, "CDS access token": CDS_ACCESS_TOKEN}
API = {"Authorization": f"Bearer {SECRETS['ELIGIBILITY_API_TOKEN']}"}
TEXT_LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"(?P<logger>[\w.]+) \[(?P<rid>[^\]\s]+)\] \S")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def seeded(fresh_fhir_server: LocalServer) -> LocalServer:
    with FhirClient(Settings().with_overrides(fhir_base_url=fresh_fhir_server.base_url)) as c:
        load_seeds(c, SEEDS_DIR, mappings=load_mappings(REPO_ROOT / "mappings"))
    return fresh_fhir_server


class Gunicorn:
    """gunicorn running the service, its stderr going to a file read after it stopped."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._file = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:service.web.gunicorn_conf",
             "service.web.wsgi:build()"],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "BIND": f"127.0.0.1:{self.port}",
                 **env},
            cwd=REPO_ROOT, stdout=self._file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass  # not listening yet, or a worker still booting
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"gunicorn did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self._file.close()
        return self.log.read_text()


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Any]:
    started: list[Gunicorn] = []

    def start(base_url: str, **env: str) -> Gunicorn:
        server = Gunicorn({
            **SECRETS, "FHIR_BASE_URL": base_url, "FHIR_AUTH": "bearer",
            "QUEUE_URL": f"sqlite:///{tmp_path / 'q.sqlite'}", "COALESCE_SECONDS": "0",
            "WEB_CONCURRENCY": "2", "EMBEDDED_WORKERS": "1", "LOG_LEVEL": "DEBUG",
            "CDS_JWT_REQUIRED": "false", "CDS_ALLOWED_FHIR_SERVERS": base_url, **env,
        }, tmp_path / f"gunicorn-{len(started)}.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def wait_done(url: str, job: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = requests.get(f"{url}/screenings/{job}", headers=API, timeout=10).json()
        if status["state"] == "done":
            return status
        time.sleep(0.3)
    pytest.fail(f"job {job} not done in 120 s")


def drive(url: str, base_url: str, pids: list[str], request_id: str) -> list[str]:
    """Every REST surface over the seed patients; the ids of the jobs it started."""
    http = requests.Session()
    for pid in pids:
        assert http.get(f"{url}/patients/{pid}/eligibility?asOf={AS_OF}", headers=API,
                        timeout=60).status_code == 200
    job = http.post(f"{url}/screenings", headers={**API, "X-Request-ID": request_id},
                    json={"patients": pids, "asOf": AS_OF}, timeout=10).json()["job"]
    assert http.post(f"{url}/screenings?wait=true", headers=API,
                     json={"patients": [pids[0]], "asOf": AS_OF}, timeout=60).ok
    body = json.dumps({"patient": pids[1]}).encode()
    stamp = str(int(time.time()))
    hooked = http.post(f"{url}/webhooks/screening", data=body, timeout=10, headers={
        **API, "X-Timestamp": stamp, "X-Signature": sign(SECRETS["WEBHOOK_SECRET"], stamp, body),
        "Content-Type": "application/json"})
    assert hooked.status_code == 202
    observation = {"resourceType": "Observation", "id": "log-obs", "status": "final",
                   "code": {"text": "x"}, "subject": {"reference": f"Patient/{pids[2]}"}}
    assert http.put(f"{url}/fhir-notify/Observation/log-obs", data=json.dumps(observation),
                    timeout=10, headers={"Authorization": f"Bearer {SECRETS['FHIR_NOTIFY_SECRET']}",
                                         "Content-Type": "application/fhir+json"}).ok
    assert http.get(f"{url}/studies", headers={"Authorization": "Bearer wrong"},
                    timeout=10).status_code == 401
    hook = {"hook": "patient-view", "hookInstance": uuid.uuid4().hex,
            "context": {"userId": "Practitioner/1", "patientId": pids[3]},
            "fhirServer": base_url,
            "fhirAuthorization": {"access_token": CDS_ACCESS_TOKEN, "token_type": "Bearer",
                                  "expires_in": 300, "scope": "patient/*.read",
                                  "subject": "cds"}}
    assert http.post(f"{url}/cds-services/trial-eligibility", headers=API, json=hook,
                     timeout=60).ok
    feedback = {"feedback": [{"card": "c0ffee00-0000-4000-8000-000000000001",
                              "outcome": "accepted"}]}
    assert http.post(f"{url}/cds-services/trial-eligibility/feedback", headers=API,
                     json=feedback, timeout=10).ok
    forged = {"feedback": [{"card": "x\r\n2026-01-01T00:00:00.000Z INFO service.x [-] forged",
                            "outcome": "accepted"}]}
    assert http.post(f"{url}/cds-services/trial-eligibility/feedback", headers=API,
                     json=forged, timeout=10).status_code == 400
    return [job, hooked.json()["job"]]


def test_gunicorn_logs_carry_time_level_logger_request_id_and_no_phi(gunicorn, seeded):
    server = gunicorn(seeded.base_url)
    pids = [p["id"] for p in seed_patients()]
    request_id = f"harden-{uuid.uuid4().hex[:12]}"
    jobs = drive(server.url, seeded.base_url, pids, request_id)
    for job in jobs:
        assert wait_done(server.url, job)["progress"]["failed"] == 0
    output = server.stop()

    service_lines = [m for m in map(TEXT_LINE.match, output.splitlines())
                     if m and m["logger"].startswith("service")]
    others = [line for line in output.splitlines() if not TEXT_LINE.match(line)]
    # INFO lines of the service reach the output (they vanished before), with their ids.
    assert len(service_lines) > len(pids)
    assert any("CDS feedback: card c0ffee00-0000-4000-8000-000000000001 accepted" in m.string
               for m in service_lines)
    assert any(m["rid"] == request_id for m in service_lines)  # the caller's X-Request-ID
    assert any(m["rid"].startswith("job:") and "screened Patient/" in m.string
               for m in service_lines)  # the queue's lines name their job
    assert any(f"[{request_id}]" in line for line in others)  # and so does the access log
    # Nothing but gunicorn's own lines and access lines is unformatted; nothing forged one.
    assert not [line for line in others if "service." in line and "GET" not in line
                and "POST" not in line and "PUT" not in line]
    assert "forged" not in output
    for pid in pids:
        assert f"Patient/{pid}" in output  # the scan read the real run's lines
    found = [f"{what}: {line[:160]}" for line in output.splitlines()
             for what, pattern in forbidden(NEVER_LOGGED).items() if pattern.search(line)]
    assert found == []


def test_json_lines_as_an_option(gunicorn):
    # No FHIR server needed: a refused notification is logged before anything is read.
    server = gunicorn("http://127.0.0.1:9/fhir", LOG_FORMAT="json", EMBEDDED_WORKERS="0",
                      WEB_CONCURRENCY="1")
    request_id = f"json-{uuid.uuid4().hex[:12]}"
    refused = requests.post(f"{server.url}/fhir-notify", data=b"{}", timeout=10,
                            headers={"Authorization": "Bearer wrong", "X-Request-ID": request_id})
    assert refused.status_code == 401
    assert refused.headers["X-Request-ID"] == request_id
    output = server.stop()
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    service = [r for r in records if r["logger"].startswith("service")]
    assert service, output[-2000:]
    assert all(set(r) >= {"time", "level", "logger", "request_id", "message"} for r in service)
    refusal = [r for r in service if "refused FHIR notification" in r["message"]]
    assert refusal and refusal[0]["request_id"] == request_id
    assert refusal[0]["level"] == "WARNING"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", refusal[0]["time"])
