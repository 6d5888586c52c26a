"""50 concurrent triggers for one patient and 200 for other seed-like patients, over HTTP to a
threaded server whose queue is shared with a separate worker process: every patient is
screened, and each (patient, study) ends with exactly one ResearchSubject."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
import requests
from werkzeug.serving import make_server

from service.core.settings import REPO_ROOT, Settings
from service.web.webhooks import sign
from tests.support.server_state import assert_written_once_from_complete_data, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

SECRET = "webhook-secret-for-the-concurrency-test-0123"


def test_concurrent_triggers_screen_everyone_and_never_duplicate(make_app, population, tmp_path):
    [target] = population.add(1)
    others = population.add(200)
    queue_url = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    settings = Settings().with_overrides(
        fhir_base_url=population.base_url, queue_url=queue_url, webhook_secret=SECRET,
        coalesce_seconds=0.2, job_lease_seconds=30.0,
    )
    app, _ = make_app(settings)
    queue = app.extensions["eligibility"].queue
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    # A second process on the same queue: the per-patient lock must hold across processes.
    worker = subprocess.Popen(
        [sys.executable, "-m", "service.cli.main", "worker", "--workers", "2"], cwd=REPO_ROOT,
        env={**os.environ, "FHIR_BASE_URL": population.base_url, "QUEUE_URL": queue_url,
             "COALESCE_SECONDS": "0.2", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        queue.start_embedded(4)
        # Each webhook a request of its own (a signed request is accepted once): the 25 for the
        # target are signed at 25 different seconds.
        now = int(time.time())
        triggers = [("webhook", target, now - k) for k in range(25)]
        triggers += [("api", target, now)] * 25
        triggers += [("webhook", pid, now) for pid in others]
        random.Random(7).shuffle(triggers)

        def fire(trigger: tuple[str, str, int]) -> requests.Response:
            kind, pid, signed_at = trigger
            if kind == "api":
                return requests.post(f"{base}/screenings", json={"patients": [pid]}, timeout=60)
            body = f'{{"patient": "{pid}"}}'.encode()
            stamp = str(signed_at)
            headers = {"X-Timestamp": stamp, "X-Signature": sign(SECRET, stamp, body),
                       "Content-Type": "application/json"}
            return requests.post(f"{base}/webhooks/screening", data=body, headers=headers,
                                 timeout=60)

        with ThreadPoolExecutor(max_workers=48) as pool:
            answers = list(pool.map(fire, triggers))
        assert [a.status_code for a in answers] == [202] * len(triggers)
        job_ids = {a.json()["job"] for a in answers}

        def all_done() -> bool:
            return all(queue.job_status(j)["state"] == "done" for j in job_ids)

        wait_until(all_done, timeout=150, what="every triggered screening done")
    finally:
        queue.stop()
        worker.terminate()
        worker.wait(10)
        server.shutdown()

    statuses = [queue.job_status(j) for j in job_ids]
    assert sum(s["progress"]["failed"] for s in statuses) == 0
    screened = {p["patient"].removeprefix("Patient/") for s in statuses for p in s["patients"]}
    assert screened == {target, *others}
    today = date.today()
    for pid in [target, *others]:
        assert_written_once_from_complete_data(population.base_url, pid,
                                               population.bundles[pid], as_of=today)
