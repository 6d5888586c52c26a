"""A real `eligibility worker` process SIGKILLed while its write-back is in flight, on the SQLite
and the Redis queue: after a restart the job completes once in effect, whether the lost write
reached the FHIR server or not. (tests/queue/test_jobs.py kills a worker with a
fake screener; this one screens a real record over the local FHIR server.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from service.core.settings import REPO_ROOT, Settings
from service.queue.jobs import JobQueue
from tests.support.fault_proxy import is_transaction
from tests.support.seed_population import AS_OF
from tests.support.server_state import (
    assert_written_once_from_complete_data,
    history,
    subjects,
    wait_until,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

LEASE_SECONDS = 1.0




def start_worker(fhir_base_url: str, queue_url: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "FHIR_BASE_URL": fhir_base_url,
        "QUEUE_URL": queue_url,
        "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "FHIR_TIMEOUT": "30",
        "COALESCE_SECONDS": "0",
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": str(REPO_ROOT),
    }
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "service.cli.main", "worker"], cwd=REPO_ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.parametrize("write_landed", [True, False], ids=["write-landed", "write-lost"])
def test_worker_killed_mid_write_completes_once_after_restart(
    proxy, population, queue_url, tmp_path, write_landed
):
    [pid] = population.add(1)
    settings = Settings().with_overrides(queue_url=queue_url, job_lease_seconds=LEASE_SECONDS)
    queue = JobQueue(settings)
    job = queue.submit_batch([pid], studies=None, as_of=AS_OF)
    held = proxy.inject("slow", when=is_transaction, delay=60.0)
    log = tmp_path / "worker.log"

    first = start_worker(proxy.base_url, queue_url, log)
    try:
        wait_until(lambda: proxy.requests("slow"), what="the write-back to be in flight")
        assert queue.job_status(job)["patients"][0]["state"] == "running"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    if write_landed:
        proxy.clear()  # the held write now reaches the server: the worker never saw the answer
        wait_until(lambda: len(subjects(population.base_url, pid)) == 2, what="the late write")
    else:
        held.drop()
        proxy.clear()
        assert subjects(population.base_url, pid) == []
    assert queue.job_status(job)["state"] != "done"

    second = start_worker(proxy.base_url, queue_url, log)
    try:
        status = wait_until(lambda: (s := queue.job_status(job))["state"] == "done" and s,
                            timeout=60, what="the job done after the restart")
    finally:
        second.terminate()
        second.wait(10)
    entry = status["patients"][0]
    assert entry["state"] == "done", log.read_text()[-2000:]
    ids = assert_written_once_from_complete_data(population.base_url, pid, population.bundles[pid])
    assert entry["researchSubjects"] == {k: f"ResearchSubject/{v}" for k, v in ids.items()}
    # Once in effect: one version of each, written by whichever attempt reached the server.
    assert all(len(history(population.base_url, rid)) == 1 for rid in ids.values())
    forwarded = [s for s in proxy.requests() if is_transaction(s) and s.action == "forwarded"]
    assert len(forwarded) == (0 if write_landed else 1)
    queue.store.close()
