"""The durable job queue on a real SQLite file and a real Redis server: coalescing, locks,
retries, lease expiry, lost messages, and a worker SIGKILLed mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from service.core.settings import REPO_ROOT, Settings
from service.fhir.errors import FhirNotFound, FhirTemporaryError
from service.queue import jobs
from service.queue.jobs import JobQueue
from tests.support.fakes import FakeScreener, wait_until

HERE = Path(__file__).resolve().parent
WORKER_SCRIPT = HERE.parent / "support" / "queue_worker_script.py"




@pytest.fixture
def qsettings(settings: Settings, queue_url: str) -> Settings:
    return settings.with_overrides(queue_url=queue_url, job_lease_seconds=5.0)


@pytest.fixture
def open_queue(qsettings: Settings):
    made: list[JobQueue] = []

    def _open(screener: Any = None, **overrides: Any) -> JobQueue:
        s = qsettings.with_overrides(**overrides) if overrides else qsettings
        queue = JobQueue(s, screener if screener is not None else FakeScreener(s))
        made.append(queue)
        return queue

    yield _open
    for queue in made:
        queue.stop()


def _task_ids(queue: JobQueue, job_id: str) -> list[str]:
    return [t.id for t in queue.store.job_tasks(job_id)]


def test_jobs_survive_reopening_the_queue(open_queue):
    first = open_queue()
    job = first.submit_batch(["a", "b"], studies=None, as_of=date(2026, 11, 15))
    first.stop()
    second = open_queue()  # a restarted service: new connections, same storage
    status = second.job_status(job)
    assert status["progress"]["pending"] == 2
    assert status["asOf"] == "2026-11-15"
    pending = {t.args[0] for t in second.huey.pending()}
    assert set(_task_ids(second, job)) <= pending


def test_repeated_triggers_coalesce_while_queued(open_queue):
    queue = open_queue(coalesce_seconds=60.0)
    first = queue.enqueue_screening("p1", source="test")
    again = queue.enqueue_screening("p1", source="test")
    other = queue.enqueue_screening("p2", source="test")
    assert not first.coalesced and again.coalesced
    assert again.job_id == first.job_id
    assert other.job_id != first.job_id
    assert len(queue.job_status(first.job_id)["patients"]) == 1


def test_a_trigger_after_the_screening_started_starts_a_new_one(open_queue):
    queue = open_queue()
    first = queue.enqueue_screening("p1", source="test")
    task_id = _task_ids(queue, first.job_id)[0]
    assert queue.store.claim(task_id, "w", 5.0) is not None
    # The running screening may already have read the record: the new data needs a new one.
    later = queue.enqueue_screening("p1", source="test")
    assert later.job_id != first.job_id and not later.coalesced


def test_claim_waits_for_the_coalescing_window(open_queue):
    queue = open_queue(coalesce_seconds=60.0)
    submitted = queue.enqueue_screening("p1", source="test")
    task_id = _task_ids(queue, submitted.job_id)[0]
    assert queue.store.claim(task_id, "w", 5.0) is None
    assert queue.store.get_task(task_id).state == "queued"


def test_duplicate_messages_screen_once(open_queue):
    queue = open_queue()
    job = queue.submit_batch(["a", "b"], studies=None, as_of=None)
    for task_id in _task_ids(queue, job):
        queue._send(task_id, 0)  # duplicates, as a reaper racing a slow worker could send
        queue._send(task_id, 0)
    queue.start_embedded(3)
    wait_until(lambda: queue.job_status(job)["state"] == "done", what="job done")
    assert sorted(c[1] for c in queue.screener.calls) == ["a", "b"]


class FlakyScreener(FakeScreener):
    """Fails with a temporary FHIR error the first `failures` times for each patient."""

    def __init__(self, settings: Settings, failures: int) -> None:
        super().__init__(settings)
        self.failures = failures
        self.attempts: dict[str, int] = {}

    def screen(self, patient_id: str, *, as_of: date, studies: Any = None) -> dict[str, Any]:
        self.attempts[patient_id] = self.attempts.get(patient_id, 0) + 1
        if self.attempts[patient_id] <= self.failures:
            raise FhirTemporaryError("503 from FHIR")
        return super().screen(patient_id, as_of=as_of, studies=studies)


def test_temporary_errors_retry_with_backoff(open_queue, monkeypatch):
    monkeypatch.setattr(jobs, "RETRY_BASE_SECONDS", 0.05)
    screener = FlakyScreener(Settings(), failures=2)
    queue = open_queue(screener)
    job = queue.submit_batch(["a"], studies=None, as_of=None)
    task_id = _task_ids(queue, job)[0]
    queue._execute(task_id)
    task = queue.store.get_task(task_id)
    assert task.state == "queued" and task.attempts == 1
    assert task.not_before > task.updated  # later, not now
    assert "503" in task.error
    queue.start_embedded(1)
    status = wait_until(lambda: (s := queue.job_status(job))["state"] == "done" and s,
                        what="retried job done")
    assert status["patients"][0]["state"] == "done"
    assert status["patients"][0]["attempts"] == 2
    assert screener.attempts == {"a": 3}


def test_retry_delay_doubles_and_is_capped():
    delays = [jobs.retry_delay(n, 60.0) for n in range(8)]
    assert delays[:4] == [jobs.RETRY_BASE_SECONDS * 2**n for n in range(4)]
    assert delays == sorted(delays)
    assert max(delays) == 60.0


def test_fatal_errors_fail_with_the_reason(open_queue):
    queue = open_queue()
    queue.screener.errors["gone"] = FhirNotFound("HAPI-2001: Resource Patient/gone is not known")
    job = queue.submit_batch(["gone"], studies=None, as_of=None)
    queue._execute(_task_ids(queue, job)[0])
    status = queue.job_status(job)
    assert status["state"] == "done"
    assert status["progress"]["failed"] == 1
    assert status["patients"][0]["error"] == "patient not found on the FHIR server"


def test_unexpected_errors_fail_without_internals(open_queue):
    queue = open_queue()
    queue.screener.errors["x"] = RuntimeError("internal detail")
    job = queue.submit_batch(["x"], studies=None, as_of=None)
    queue._execute(_task_ids(queue, job)[0])
    entry = queue.job_status(job)["patients"][0]
    assert entry["state"] == "failed"
    assert "internal detail" not in entry["error"]


def test_a_patient_held_by_another_worker_is_requeued_not_screened(open_queue, monkeypatch):
    queue = open_queue()
    sent: list[tuple[str, float]] = []
    monkeypatch.setattr(queue, "_send", lambda task_id, delay: sent.append((task_id, delay)))
    job = queue.submit_batch(["p1"], studies=None, as_of=None)
    task_id = _task_ids(queue, job)[0]
    assert queue.store.lock("patient:p1", "other-worker", 30.0)
    queue._execute(task_id)
    assert queue.screener.calls == []
    assert queue.store.get_task(task_id).state == "queued"
    assert sent and sent[-1][0] == task_id
    queue.store.unlock("patient:p1", "other-worker")
    queue._execute(task_id)  # the re-sent message, once the other worker is done
    assert [c[1] for c in queue.screener.calls] == ["p1"]
    assert queue.store.get_task(task_id).state == "done"


class HeldScreener(FakeScreener):
    """Holds every screening until released, tracking how many of one patient run at once."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.active = 0
        self.max_active = 0
        self.release = threading.Event()
        self._guard = threading.Lock()

    def screen(self, patient_id: str, *, as_of: date, studies: Any = None) -> dict[str, Any]:
        with self._guard:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.release.wait(60)  # held until the test has seen the other workers turned away
        with self._guard:
            self.active -= 1
        return super().screen(patient_id, as_of=as_of, studies=studies)


def test_two_workers_never_screen_one_patient_at_once(open_queue, monkeypatch):
    screener = HeldScreener(Settings())
    queue = open_queue(screener)
    refused: list[str] = []
    lock = queue.store.lock

    def counting_lock(name: str, owner: str, ttl: float) -> bool:
        taken = lock(name, owner, ttl)
        if not taken and name == "patient:same":
            refused.append(owner)
        return taken

    monkeypatch.setattr(queue.store, "lock", counting_lock)
    jobs_ = [queue.submit_batch(["same"], studies=None, as_of=None) for _ in range(3)]
    queue.start_embedded(3)
    # One screening is held; the other two workers must be turned away by the patient's lock
    # (no sleep decides it: without the lock they would be inside screen() beside it).
    wait_until(lambda: len(set(refused)) >= 2 or screener.active > 1,
               what="the other workers to meet the patient's lock")
    assert screener.active == 1
    screener.release.set()
    for job in jobs_:
        wait_until(lambda job=job: queue.job_status(job)["state"] == "done", what="jobs done")
    assert len(screener.calls) == 3
    assert screener.max_active == 1


def test_reaper_requeues_a_task_whose_worker_died(open_queue, monkeypatch):
    queue = open_queue()
    sent: list[str] = []
    monkeypatch.setattr(queue, "_send", lambda task_id, delay: sent.append(task_id))
    job = queue.submit_batch(["p1"], studies=None, as_of=None)
    task_id = _task_ids(queue, job)[0]
    sent.clear()
    assert queue.store.claim(task_id, "dead-worker", 5.0) is not None
    assert queue.reap(now=time.time()) == 0  # lease still running: left alone
    assert queue.reap(now=time.time() + 10) == 1
    task = queue.store.get_task(task_id)
    assert task.state == "queued" and task.worker is None
    assert sent == [task_id]
    # The dead worker's late answer must not overwrite the re-queued task.
    assert not queue.store.complete(task_id, "dead-worker", {"result": {}})
    queue._execute(task_id)
    assert queue.store.get_task(task_id).state == "done"


def test_reaper_resends_a_message_lost_between_dequeue_and_claim(open_queue):
    queue = open_queue()
    job = queue.submit_batch(["p1"], studies=None, as_of=None)
    task_id = _task_ids(queue, job)[0]
    assert queue.huey.dequeue() is not None  # taken by a worker that then vanished
    assert queue.huey.pending() == []
    assert queue.reap() == 0  # too recent to call it lost
    assert queue.reap(now=time.time() + 3600) == 1
    assert [t.args[0] for t in queue.huey.pending()] == [task_id]
    # A message that is still in huey is never duplicated by the reaper.
    assert queue.reap(now=time.time() + 3600) == 0


def test_locks_and_once_keys(open_queue):
    store = open_queue().store
    assert store.lock("n", "a", 5.0)
    assert not store.lock("n", "b", 5.0)
    assert store.lock("n", "a", 5.0)  # the owner may extend
    store.unlock("n", "b")  # not the owner: no effect
    assert not store.lock("n", "b", 5.0)
    store.unlock("n", "a")
    assert store.lock("n", "b", 0.05)
    # An expired lease can be taken over. The lease runs on the store's own clock (Redis
    # expires the key itself), so the test waits for the store to let go rather than sleep.
    wait_until(lambda: store.lock("n", "c", 5.0), timeout=10, what="the 50 ms lease to expire")
    assert not store.lock("n", "b", 5.0)
    assert store.remember_once("k", 5.0)
    assert not store.remember_once("k", 5.0)


# ------------------------------------------------------------------------------ SIGKILL


def _start_worker(queue_url: str, log: Path, mode: str, lease: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(HERE)])}
    return subprocess.Popen(
        [sys.executable, str(WORKER_SCRIPT), queue_url, str(log), mode, str(lease)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_a_job_survives_a_worker_killed_mid_job(open_queue, queue_url, tmp_path):
    lease = 1.0
    queue = open_queue(job_lease_seconds=lease)
    job = queue.submit_batch(["victim"], studies=None, as_of=None)
    log = tmp_path / "screenings.log"
    log.touch()
    first = _start_worker(queue_url, log, "block", lease)
    try:
        wait_until(lambda: "start victim" in log.read_text(), what="first worker started")
        assert queue.job_status(job)["patients"][0]["state"] == "running"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert queue.job_status(job)["state"] != "done"
    second = _start_worker(queue_url, log, "finish", lease)
    try:
        status = wait_until(lambda: (s := queue.job_status(job))["state"] == "done" and s,
                            timeout=60, what="job done after restart")
    finally:
        second.terminate()
        second.wait(10)
    lines = log.read_text().splitlines()
    assert lines.count("start victim") == 2  # the killed attempt and the re-run
    assert lines.count("done victim") == 1  # takes effect once
    entry = status["patients"][0]
    assert entry["state"] == "done"
    assert entry["researchSubjects"] == {"study": "ResearchSubject/study-victim"}


def test_memory_queue_runs_in_process(settings):
    s = settings.with_overrides(queue_url="memory://")
    queue = JobQueue(s, FakeScreener(s))
    try:
        job = queue.submit_batch(["m1"], studies=None, as_of=date(2026, 11, 15))
        queue.start_embedded(1)
        status = wait_until(lambda: (st := queue.job_status(job))["state"] == "done" and st,
                            what="memory job done")
        assert status["patients"][0]["result"]["asOf"] == "2026-11-15"
    finally:
        queue.stop()


def test_a_finished_screening_runs_the_outreach_sweep_on_the_queue(open_queue):
    queue = open_queue()
    sweeps: list[str] = []
    queue.outreach = lambda: sweeps.append("swept")
    job = queue.submit_batch(["a"], studies=None, as_of=None)
    queue.start_embedded(1)
    wait_until(lambda: queue.job_status(job)["state"] == "done" and sweeps, what="sweep ran")
    # one sweep at a time: while another worker holds the outreach lock, a sweep is skipped
    assert queue.store.lock("outreach", "other-worker", 30.0)
    before = len(sweeps)
    queue.sweep_outreach()
    assert len(sweeps) == before
    queue.store.unlock("outreach", "other-worker")
    queue.sweep_outreach()
    assert len(sweeps) == before + 1
