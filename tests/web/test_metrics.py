"""GET /metrics (docs/deployment.md "Monitoring"): the contract's metric names, parsed
with prometheus_client's own text parser, behind the API token; under gunicorn with 2 workers
(and their embedded queue workers) the figures are summed across processes."""

from __future__ import annotations

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from service.core.settings import REPO_ROOT, Settings
from service.mappings import load_mappings
from service.web.webhooks import sign
from tests.support.log_scan import seed_patients
from tests.web.test_gunicorn_logs import (  # noqa: F401  (fixtures: gunicorn, seeded)
    API,
    AS_OF,
    SECRETS,
    gunicorn,
    seeded,
    wait_done,
)

pytestmark = pytest.mark.security

TOKEN = "metrics-api-token-0123456789abcdef"
NAMES = ("eligibility_screenings", "eligibility_researchsubject_writes",
         "eligibility_fhir_request_seconds", "eligibility_queue_pending",
         "eligibility_signin_failures")


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [(dict(s.labels), s.value) for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == name]


def total(text: str, name: str, **labels: str) -> float:
    return sum(v for got, v in samples(text, name)
               if all(got.get(k) == want for k, want in labels.items()))


def test_metrics_need_the_api_token_and_parse(make_app, tmp_path: Path):
    settings = Settings().with_overrides(
        fhir_base_url="http://127.0.0.1:9/fhir", queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
        api_tokens=(TOKEN,))
    app, _ = make_app(settings)
    http = app.test_client()
    assert http.get("/metrics").status_code == 401
    assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert answer.mimetype == "text/plain"
    found = families(answer.get_data(as_text=True))
    assert found["eligibility_queue_pending"].type == "gauge"
    text = answer.get_data(as_text=True)
    assert total(text, "eligibility_queue_pending") == 0
    # The contract's series exist before anything happened (alerts find them at 0).
    assert {s["result"] for s, _ in samples(text, "eligibility_researchsubject_writes_total")
            } >= {"created", "updated", "unchanged", "not-a-candidate"}
    assert samples(text, "eligibility_signin_failures_total")


def _wrong_password(url: str) -> int:
    http = requests.Session()
    page = http.get(f"{url}/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, page[:500]
    return http.post(f"{url}/login", timeout=10, data={
        "csrf_token": token.group(1), "username": "nobody", "password": "wrong-password"},
        allow_redirects=False).status_code


@pytest.mark.slow
def test_metrics_under_gunicorn_are_summed_across_workers(gunicorn, seeded, tmp_path):  # noqa: F811
    folder = tmp_path / "metrics"
    server = gunicorn(
        seeded.base_url, PROMETHEUS_MULTIPROC_DIR=str(folder), GUNICORN_THREADS="1",
        USERS_DB=str(tmp_path / "users.sqlite"), SESSION_SECRET="s" * 48)
    pids = [p["id"] for p in seed_patients()]
    url = server.url

    def evaluate(pid: str) -> int:
        return requests.get(f"{url}/patients/{pid}/eligibility?asOf={AS_OF}", headers=API,
                            timeout=120).status_code

    # Concurrent requests to single-threaded workers: both workers answer some of them.
    reads = pids * 2
    with ThreadPoolExecutor(max_workers=6) as pool:
        assert set(pool.map(evaluate, reads)) == {200}
    assert requests.get(f"{url}/patients/no-such-patient/eligibility?asOf={AS_OF}",
                        headers=API, timeout=60).status_code == 404
    job = requests.post(f"{url}/screenings", headers=API, timeout=30,
                        json={"patients": pids, "asOf": AS_OF}).json()["job"]
    body = json.dumps({"patient": pids[0]}).encode()
    stamp = str(int(time.time()))
    hooked = requests.post(f"{url}/webhooks/screening", data=body, timeout=10, headers={
        **API, "X-Timestamp": stamp, "X-Signature": sign(SECRETS["WEBHOOK_SECRET"], stamp, body),
        "Content-Type": "application/json"})
    assert hooked.status_code == 202
    for started in (job, hooked.json()["job"]):
        assert wait_done(url, started)["progress"]["failed"] == 0
    assert {_wrong_password(url) for _ in range(3)} == {401}

    scrapes = [requests.get(f"{url}/metrics", headers=API, timeout=30) for _ in range(8)]
    assert requests.get(f"{url}/metrics", timeout=10).status_code == 401
    assert {s.status_code for s in scrapes} == {200}
    texts = [s.text for s in scrapes]
    text = texts[-1]
    assert set(NAMES) <= set(families(text)), sorted(families(text))
    # Whichever worker answered the scrape, it reports every process's figures.
    assert len({total(t, "eligibility_screenings_total") for t in texts}) == 1
    assert total(text, "eligibility_screenings_total", trigger="api", outcome="ok") == (
        len(reads) + len(pids))
    assert total(text, "eligibility_screenings_total", trigger="api",
                 outcome="not-found") == 1
    assert total(text, "eligibility_screenings_total", trigger="webhook", outcome="ok") == 1
    studies = len(load_mappings(REPO_ROOT / "mappings").studies)
    # Every study of every screening with write-back has exactly one result.
    assert total(text, "eligibility_researchsubject_writes_total") == (len(pids) + 1) * studies
    assert total(text, "eligibility_researchsubject_writes_total", result="created") > 0
    # A record is read in one batch (POST); the ResearchStudies are searched (GET).
    assert total(text, "eligibility_fhir_request_seconds_count", method="POST") > len(reads)
    assert total(text, "eligibility_fhir_request_seconds_count", method="GET") > 0
    assert total(text, "eligibility_queue_pending") == 0
    assert total(text, "eligibility_signin_failures_total", reason="wrong-password") == 3
    # The counts came from more than one process: the sums above add several workers' files.
    counters = {f.name.split("_", 1)[1] for f in folder.glob("counter_*.db")}
    assert len(counters) >= 2, sorted(counters)
    server.stop()


def test_a_failed_fhir_request_is_timed_and_counted_as_an_error():
    from service.core import metrics

    before = metrics.FHIR_ERRORS.labels(method="GET", kind="transport")._value.get()
    count = metrics.FHIR_SECONDS.labels(method="GET")._sum.get()
    settings = Settings().with_overrides(fhir_base_url="http://127.0.0.1:9/fhir",
                                         fhir_max_retries=0)
    from service.fhir.client import FhirClient
    from service.fhir.errors import FhirTemporaryError

    with FhirClient(settings) as client, pytest.raises(FhirTemporaryError):
        client.read("Patient", f"p{uuid.uuid4().hex[:6]}")
    assert metrics.FHIR_ERRORS.labels(method="GET", kind="transport")._value.get() == before + 1
    assert metrics.FHIR_SECONDS.labels(method="GET")._sum.get() >= count
