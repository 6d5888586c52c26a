"""Durable screening queue: huey carries task ids, the job store holds state, leases and results.

Guarantees (see job_store.py for the mechanism):
- a trigger is acknowledged once its task is committed to the store;
- a task is claimed atomically and acknowledged (done/failed) only after the screening
  finished; a worker killed mid-task lets its lease expire and the reaper re-queues it;
- screenings are idempotent writes, so a re-run takes effect once;
- triggers for a patient arriving while a screening of that patient is still queued join it
  (the queued screening runs `coalesce_seconds` after the first trigger);
- a per-patient lease lock keeps two workers from screening one patient at once;
- temporary FHIR errors re-queue with exponential backoff, never dropping the task; fatal
  ones (unknown patient, unreadable record) mark it failed with the reason.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol
from urllib.parse import urlparse

from huey import MemoryHuey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from service.core import metrics
from service.core.clock import Clock
from service.core.log_setup import bound_request_id
from service.core.settings import Settings
from service.queue.redis_store import RedisJobStore
from service.queue.sqlite_store import SqliteJobStore
from service.queue.store import (
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    JobRecord,
    JobStore,
    TaskRecord,
    new_id,
)

log = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 1.0  # another worker holds the patient: look again shortly
RETRY_BASE_SECONDS = 5.0
# GET /screenings/{job} shows at most this many patients per answer (about 10 KB each).
JOB_PAGE_PATIENTS = 50
PURGE_INTERVAL_SECONDS = 3600.0  # the reaper purges expired jobs at start, then hourly
OUTREACH_INTERVAL_SECONDS = 60.0  # the reaper queues an outreach sweep this often


class PatientScreener(Protocol):
    """What a worker needs to screen one patient with write-back."""

    def screen(
        self, patient_id: str, *, as_of: date, studies: Sequence[str] | None
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Submitted:
    """Answer to an enqueue: the job to poll and whether it joined an already queued one."""

    job_id: str
    coalesced: bool


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


def retry_delay(attempts: int, cap: float) -> float:
    """Seconds before retry number attempts+1: doubling from RETRY_BASE_SECONDS, capped."""
    return min(RETRY_BASE_SECONDS * 2 ** min(attempts, 30), cap)


def open_store(settings: Settings, now: Callable[[], float] = time.time
               ) -> tuple[JobStore, Any]:
    """The job store and the huey instance for QUEUE_URL (sqlite:///, redis://, memory://);
    `now` is the store's clock (seconds since the epoch)."""
    url = settings.queue_url
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url[len("sqlite://"):]
        if not path.startswith("/"):
            path = os.path.abspath(path)
        store = SqliteJobStore(path, now)
        huey = SqliteHuey("eligibility", filename=path, results=False, utc=True)
        return store, huey
    if scheme in ("redis", "rediss"):
        return RedisJobStore(url, now), RedisHuey("eligibility", url=url, results=False, utc=True)
    # memory:// keeps everything in this process: for tests and throwaway demos only.
    store = SqliteJobStore(f"file:elig-{uuid.uuid4().hex}?mode=memory&cache=shared", now)
    return store, MemoryHuey("eligibility", results=False, utc=True)


class JobQueue:
    """Submit screenings, run them on workers, report their state."""

    def __init__(
        self,
        settings: Settings,
        screener: PatientScreener | None = None,
        *,
        store: JobStore | None = None,
        huey: Any = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.screener = screener
        # Decides the as-of date of a submission that names none; the task keeps that date.
        self.clock = clock or Clock.from_settings(settings)
        if store is None or huey is None:
            store, huey = open_store(settings, self.epoch)
        self.store: JobStore = store
        self.huey = huey
        self._task = huey.task(name="screen-patient")(self._execute)
        # Outreach (service/usecases/outreach.py): a sweep run after each screening and every
        # OUTREACH_INTERVAL_SECONDS by the reaper; its state is durable in its own store.
        self.outreach: Callable[[], object] | None = None
        self._outreach_task = huey.task(name="outreach-sweep")(self.sweep_outreach)
        self._next_outreach = 0.0
        self._consumer: Consumer | None = None
        self._reaper_stop = threading.Event()
        self._reaper: threading.Thread | None = None

    def epoch(self) -> float:
        """Now, in seconds since the epoch, by the queue's clock (the store's clock too)."""
        return self.clock.now().timestamp()

    # ------------------------------------------------------------------ submitting

    def ping(self) -> None:
        """Raise when the queue's storage cannot be reached."""
        self.store.ping()

    def enqueue_screening(
        self, patient_id: str, *, source: str, as_of: date | None = None
    ) -> Submitted:
        """Queue a screening (all studies) for a trigger; joins a queued one if any.

        The screening is made as of `as_of`, else the clock's today at submission: a task
        that waits past midnight still screens as of the day it was asked for.
        """
        now = self.epoch()
        delay = self.settings.coalesce_seconds
        day = (as_of or self.clock.today()).isoformat()
        job = JobRecord(id=new_id(), source=source, as_of=day, studies=None, total=1,
                        created=now)
        task = TaskRecord(
            id=new_id(), job_id=job.id, patient=patient_id, source=source, as_of=day,
            not_before=now + delay, created=now, updated=now,
        )
        job_id, task_ids, created = self.store.add_job(
            job, [task], coalesce_key=f"patient:{patient_id}"
        )
        if created:
            self._send(task_ids[0], delay)
            log.info("queued screening of Patient/%s (job %s, %s)", patient_id, job_id, source)
        else:
            log.info("trigger for Patient/%s joined queued job %s (%s)", patient_id, job_id, source)
        return Submitted(job_id, coalesced=not created)

    def submit_batch(
        self,
        patient_ids: Sequence[str],
        *,
        studies: Sequence[str] | None,
        as_of: date | None,
        source: str = "api",
    ) -> str:
        """Queue one screening per patient under a new job (as of `as_of`, else the clock's
        today at submission); returns the job id."""
        now = self.epoch()
        job = JobRecord(
            id=new_id(), source=source, as_of=(as_of or self.clock.today()).isoformat(),
            studies=tuple(studies) if studies else None, total=len(patient_ids), created=now,
        )
        tasks = [
            TaskRecord(
                id=new_id(), job_id=job.id, patient=pid, studies=job.studies,
                as_of=job.as_of, source=source, not_before=now, created=now, updated=now,
            )
            for pid in patient_ids
        ]
        self.store.add_job(job, tasks)
        for task in tasks:
            self._send(task.id, 0)
        log.info("queued batch job %s with %d patient(s)", job.id, len(tasks))
        return job.id

    def _send(self, task_id: str, delay: float) -> None:
        if delay > 0:
            self._task.schedule(args=(task_id,), delay=delay)
        else:
            self._task(task_id)

    # ------------------------------------------------------------------ reporting

    def job_status(
        self, job_id: str, cursor: int = 0, limit: int = JOB_PAGE_PATIENTS
    ) -> dict[str, Any] | None:
        """The GET /screenings/{job} body, or None for an unknown job.

        The summary (state, progress) covers the whole job; `patients` holds at most `limit`
        of them from `cursor` on, and `next` is the cursor of the following page.
        """
        job = self.store.get_job(job_id)
        if job is None:
            return None
        limit = max(1, min(limit, JOB_PAGE_PATIENTS))
        stored = self.store.job_counts(job_id)
        counts = {s: stored.get(s, 0) for s in (QUEUED, RUNNING, DONE, FAILED)}
        total = sum(counts.values())
        tasks, next_cursor = self.store.job_tasks_page(job_id, cursor, limit)
        patients = []
        for t in tasks:
            entry: dict[str, Any] = {"patient": f"Patient/{t.patient}", "state": t.state}
            if t.attempts:
                entry["attempts"] = t.attempts
            if t.state == DONE and t.result is not None:
                entry["result"] = t.result.get("result")
                entry["researchSubjects"] = t.result.get("researchSubjects", {})
            if t.error and t.state != DONE:
                entry["error"] = t.error
            patients.append(entry)
        finished = counts[DONE] + counts[FAILED]
        if finished == total:
            state = "done"
        elif counts[RUNNING] or finished:
            state = "running"
        else:
            state = "queued"
        body: dict[str, Any] = {
            "job": job.id,
            "state": state,
            "source": job.source,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(job.created)),
            "progress": {
                "total": total, "done": counts[DONE], "failed": counts[FAILED],
                "pending": counts[QUEUED] + counts[RUNNING],
            },
            "patients": patients,
        }
        if next_cursor is not None:
            body["next"] = str(next_cursor)
        if job.as_of:
            body["asOf"] = job.as_of
        if job.studies:
            body["studies"] = list(job.studies)
        return body

    def purge(self, now: float | None = None) -> int:
        """Delete finished jobs (and their results) older than JOB_RETENTION_DAYS."""
        now = self.epoch() if now is None else now
        purged = self.store.purge_finished(now - self.settings.job_retention_days * 86400)
        if purged:
            log.info("purged %d finished job(s) older than %d days", purged,
                     self.settings.job_retention_days)
        return purged

    # ------------------------------------------------------------------ executing

    def _worker_id(self) -> str:
        host, pid, thread = socket.gethostname(), os.getpid(), threading.get_ident()
        return f"{host}:{pid}:{thread}:{uuid.uuid4().hex[:8]}"

    def _execute(self, task_id: str) -> None:
        """Run one task (called by a huey worker with the task id)."""
        if self.screener is None:
            raise RuntimeError("this JobQueue has no screener; it cannot run tasks")
        lease = self.settings.job_lease_seconds
        worker = self._worker_id()
        task = self.store.claim(task_id, worker, lease)
        if task is None:
            return  # a duplicate message, already done, or another worker has it
        with bound_request_id(f"job:{task.job_id}"):
            self._run_claimed(task, worker, lease)

    def _run_claimed(self, task: TaskRecord, worker: str, lease: float) -> None:
        """Screen a claimed task under the patient's lock, keeping the lease alive meanwhile."""
        assert self.screener is not None
        task_id = task.id
        patient_lock = f"patient:{task.patient}"
        if not self.store.lock(patient_lock, worker, lease):
            self.store.requeue(
                task_id, worker, self.epoch() + BUSY_RETRY_SECONDS, task.error, count=False
            )
            self._send(task_id, BUSY_RETRY_SECONDS)
            return
        stop_beat = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(task_id, patient_lock, worker, stop_beat),
            name=f"heartbeat-{task_id[:8]}", daemon=True,
        )
        beat.start()
        try:
            # Tasks queued before the as-of date was stored with them carry none.
            as_of = date.fromisoformat(task.as_of) if task.as_of else self.clock.today()
            try:
                with metrics.trigger(task.source or "queue"):
                    result = self.screener.screen(task.patient, as_of=as_of,
                                                  studies=task.studies)
            except Exception as exc:  # noqa: BLE001 - classified below, never lost
                self._handle_failure(task, worker, exc)
            else:
                self.store.complete(task_id, worker, result)
                log.info("screened Patient/%s (job %s)", task.patient, task.job_id)
                if self.outreach is not None:
                    self._outreach_task()  # a new candidate is told of without waiting
        finally:
            stop_beat.set()
            beat.join()
            self.store.unlock(patient_lock, worker)

    def _handle_failure(self, task: TaskRecord, worker: str, exc: Exception) -> None:
        from service.usecases.screening_failures import classify_failure

        failure = classify_failure(exc)
        kind = "bug" if failure is None else "temporary" if failure.retryable else "fatal"
        reason = failure.reason if failure is not None else _first_line(exc)
        if kind == "temporary":
            cap = self.settings.job_retry_max_seconds
            delay = retry_delay(task.attempts, cap)
            # A server that asked for a longer pause (Retry-After) gets it, up to the cap.
            hint = failure.retry_after if failure is not None else None
            if isinstance(hint, int | float) and math.isfinite(hint) and hint > delay:
                delay = min(float(hint), cap)
            self.store.requeue(task.id, worker, self.epoch() + delay, reason, count=True)
            self._send(task.id, delay)
            log.warning(
                "screening of Patient/%s hit a temporary FHIR error (attempt %d); retry in %.0fs",
                task.patient, task.attempts + 1, delay,
            )
        else:
            if kind == "bug":
                log.exception("screening of Patient/%s failed unexpectedly", task.patient)
                reason = "internal error while screening; see the service log"
            else:
                log.warning("screening of Patient/%s failed: %s", task.patient, reason)
            self.store.fail(task.id, worker, reason)

    def sweep_outreach(self) -> None:
        """One outreach sweep, by one worker at a time (the others skip: it runs again soon).

        The queue runs it as a task after each screening and every OUTREACH_INTERVAL_SECONDS;
        called directly it sweeps now (what the reaper's interval would do later).
        """
        if self.outreach is None:
            return
        worker = self._worker_id()
        if not self.store.lock("outreach", worker, self.settings.job_lease_seconds):
            return
        try:
            self.outreach()
        except Exception:  # noqa: BLE001 - the next sweep tries again; nothing is lost
            log.warning("outreach sweep failed; it runs again shortly", exc_info=True)
        finally:
            self.store.unlock("outreach", worker)

    def _heartbeat(self, task_id: str, lock: str, worker: str, stop: threading.Event) -> None:
        lease = self.settings.job_lease_seconds
        while not stop.wait(lease / 3):
            try:
                self.store.heartbeat(task_id, worker, lease)
                self.store.lock(lock, worker, lease)
            except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
                log.warning("heartbeat for task %s failed", task_id, exc_info=True)

    # ------------------------------------------------------------------ recovery

    def reap(self, now: float | None = None) -> int:
        """Re-queue tasks whose worker died and re-send queued tasks whose message was lost."""
        now = self.epoch() if now is None else now
        reaped = self.store.reap_expired(now)
        for task_id in reaped:
            log.warning("task %s lost its worker; re-queued", task_id)
            self._send(task_id, 0)
        resent = len(reaped)
        # A message can vanish between huey's dequeue and our claim (a kill in that instant).
        grace = max(self.settings.job_lease_seconds, 5.0)
        due = set(self.store.queued_due(now - grace)) - set(reaped)
        if due:
            in_huey = {
                t.args[0] for t in [*self.huey.pending(), *self.huey.scheduled()] if t.args
            }
            for task_id in due - in_huey:
                self._send(task_id, 0)
                resent += 1
        return resent

    def _reaper_loop(self) -> None:
        interval = max(self.settings.job_lease_seconds / 3, 0.5)
        next_purge = 0.0
        while True:
            try:
                self.reap()
                if self.outreach is not None and time.monotonic() >= self._next_outreach:
                    self._next_outreach = time.monotonic() + OUTREACH_INTERVAL_SECONDS
                    self._outreach_task()
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + PURGE_INTERVAL_SECONDS
                    self.purge()
            except Exception:  # noqa: BLE001 - try again next round
                log.warning("reaper round failed", exc_info=True)
            if self._reaper_stop.wait(interval):
                return

    def _consumer_for(self, workers: int) -> Consumer:
        # Poll at most once a second: triggers should not wait the default 10 s.
        return Consumer(
            self.huey, workers=workers, worker_type="thread", periodic=False,
            initial_delay=0.1, backoff=1.15, max_delay=1.0, scheduler_interval=1,
        )

    def start_embedded(self, workers: int = 1) -> None:
        """Run worker threads inside this process (the `serve` default) until stop()."""
        consumer = _EmbeddedConsumer(
            self.huey, workers=workers, worker_type="thread", periodic=False,
            initial_delay=0.1, backoff=1.15, max_delay=1.0, scheduler_interval=1,
        )
        consumer.start()
        self._consumer = consumer
        self._start_reaper()

    def _start_reaper(self) -> None:
        self._reaper_stop.clear()
        self._reaper = threading.Thread(target=self._reaper_loop, name="reaper", daemon=True)
        self._reaper.start()

    def stop(self) -> None:
        """Stop embedded workers (finishing the task in hand) and the reaper."""
        self._reaper_stop.set()
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None
        if self._reaper is not None:
            self._reaper.join()
            self._reaper = None

    def run_worker(self, workers: int = 1) -> None:
        """Run workers in the foreground until SIGINT/SIGTERM (the `worker` command)."""
        self._start_reaper()
        try:
            self._consumer_for(workers).run()
        finally:
            self._reaper_stop.set()


class _EmbeddedConsumer(Consumer):
    """A consumer that leaves signal handling to its host (the web server owns Ctrl-C)."""

    def _set_signal_handlers(self) -> None:
        pass
