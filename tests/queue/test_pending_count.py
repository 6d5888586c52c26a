"""eligibility_queue_pending reads the job store: tasks queued or running count, finished ones
do not, on SQLite and on Redis (docs/deployment.md "Monitoring")."""

from __future__ import annotations

from service.core.settings import Settings
from service.queue.jobs import open_store
from service.queue.store import JobRecord, TaskRecord, new_id


def test_pending_counts_queued_and_running_tasks_of_every_job(queue_url):
    store, _ = open_store(Settings().with_overrides(queue_url=queue_url))
    try:
        assert store.pending_count() == 0
        for size in (3, 2):
            job = JobRecord(id=new_id(), source="api", as_of=None, studies=None, total=size)
            store.add_job(job, [TaskRecord(id=new_id(), job_id=job.id, patient=f"p{i}")
                                for i in range(size)])
        tasks = [t for j in _jobs(store) for t in j]
        assert store.pending_count() == 5
        claimed = [store.claim(t.id, "w1", 60) for t in tasks[:3]]
        assert all(claimed) and store.pending_count() == 5  # running is still pending
        assert store.complete(tasks[0].id, "w1", {"ok": True})
        assert store.fail(tasks[1].id, "w1", "not found")
        assert store.pending_count() == 3
        assert store.requeue(tasks[2].id, "w1", 0.0, "busy", count=True)
        assert store.pending_count() == 3  # re-queued: still waiting
    finally:
        store.close()


def _jobs(store):
    ids = store.queued_due(float("inf"))
    by_job: dict[str, list] = {}
    for task_id in ids:
        task = store.get_task(task_id)
        by_job.setdefault(task.job_id, []).append(task)
    return list(by_job.values())
