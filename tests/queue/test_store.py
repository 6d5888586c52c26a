"""The in-process (memory://) job store under concurrent threads: workers, heartbeats and the
reaper touch it at once, and no call may fail with SQLite's shared-cache table lock."""

from __future__ import annotations

import threading
import time

import pytest

from service.core.settings import Settings
from service.queue.jobs import open_store
from service.queue.store import JobRecord, TaskRecord, new_id

pytestmark = pytest.mark.reliability


def test_memory_store_serves_many_threads_without_lock_errors():
    store, _ = open_store(Settings().with_overrides(queue_url="memory://"))
    errors: list[BaseException] = []
    done: list[str] = []
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()
        try:
            for i in range(150):
                job = JobRecord(id=new_id(), source="test", as_of=None, studies=None, total=1)
                task = TaskRecord(id=new_id(), job_id=job.id, patient=f"p{n}-{i}")
                store.add_job(job, [task], coalesce_key=f"patient:p{n}-{i}")
                assert store.get_job(job.id) is not None
                assert store.claim(task.id, f"w{n}", 30.0) is not None
                assert store.lock(f"patient:p{n}-{i}", f"w{n}", 30.0)
                store.heartbeat(task.id, f"w{n}", 30.0)
                store.queued_due(time.time())
                store.reap_expired(time.time())
                assert store.complete(task.id, f"w{n}", {"result": i})
                store.unlock(f"patient:p{n}-{i}", f"w{n}")
                assert [t.state for t in store.job_tasks(job.id)] == ["done"]
                done.append(task.id)
        except BaseException as exc:  # noqa: BLE001 - reported below, whatever it is
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert len(done) == 8 * 150
