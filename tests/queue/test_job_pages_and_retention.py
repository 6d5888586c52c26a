"""The job store stays bounded (issue 13): GET /screenings/{job} answers a summary and one page
of at most JOB_PAGE_PATIENTS patients, with a cursor to the next (finding 5); finished jobs and
their results are purged after JOB_RETENTION_DAYS, unfinished ones never (retention). Both
backends: SQLite and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.core.clock import Clock
from service.core.settings import Settings
from service.queue.jobs import JOB_PAGE_PATIENTS, JobQueue
from service.queue.store import DONE

pytestmark = pytest.mark.reliability

RESULT = {"result": {"patient": "Patient/x", "studies": [{"reason": "Haemoglobin 59 g/L " * 40}]},
          "researchSubjects": {"s": "ResearchSubject/1"}}


class HandClock:
    """The queue's clock, moved by hand: jobs are made and finished at the times a test says."""

    def __init__(self) -> None:
        self.at = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def hand() -> HandClock:
    return HandClock()


@pytest.fixture
def queue(queue_url: str, hand: HandClock) -> Iterator[JobQueue]:
    made = JobQueue(Settings().with_overrides(queue_url=queue_url, job_retention_days=30),
                    clock=Clock(hand))
    yield made
    made.stop()


def finish(queue: JobQueue, job_id: str) -> None:
    """Run every task of a job to done, as a worker would, at the queue clock's time."""
    cursor: int | None = 0
    while cursor is not None:
        tasks, cursor = queue.store.job_tasks_page(job_id, cursor, 100)
        for task in tasks:
            assert queue.store.claim(task.id, "w", 60) is not None
            assert queue.store.complete(task.id, "w", RESULT)


def test_a_large_job_is_answered_in_pages_with_a_whole_job_summary(queue):
    ids = [f"p{i:04d}" for i in range(2 * JOB_PAGE_PATIENTS + 7)]
    job = queue.submit_batch(ids, studies=None, as_of=None)
    finish(queue, job)
    seen: list[str] = []
    cursor, pages = 0, 0
    while True:
        body = queue.job_status(job, cursor)
        pages += 1
        assert len(body["patients"]) <= JOB_PAGE_PATIENTS
        assert body["progress"] == {"total": len(ids), "done": len(ids), "failed": 0,
                                    "pending": 0}
        assert body["state"] == "done"
        seen += [p["patient"] for p in body["patients"]]
        if "next" not in body:
            break
        cursor = int(body["next"])
    assert pages == 3
    assert seen == [f"Patient/{i}" for i in ids]  # every patient once, in submission order


def test_the_http_answer_is_capped_and_links_the_next_page(make_app, queue_url):
    app, _ = make_app(Settings().with_overrides(queue_url=queue_url))
    queue = app.extensions["eligibility"].queue
    job = queue.submit_batch([f"p{i}" for i in range(JOB_PAGE_PATIENTS + 3)], studies=None,
                             as_of=None)
    finish(queue, job)
    http = app.test_client()
    first = http.get(f"/screenings/{job}")
    assert first.status_code == 200
    assert len(first.get_json()["patients"]) == JOB_PAGE_PATIENTS
    # Each patient's full result is in the page; the answer stays bounded by the cap.
    assert len(first.get_data()) < JOB_PAGE_PATIENTS * 2 * len(str(RESULT)) + 2000
    link = first.headers["Link"]
    assert link.startswith(f"</screenings/{job}?cursor=") and link.endswith('>; rel="next"')
    second = http.get(link[1:link.index(">")])
    assert [p["patient"] for p in second.get_json()["patients"]] == [
        f"Patient/p{i}" for i in range(JOB_PAGE_PATIENTS, JOB_PAGE_PATIENTS + 3)]
    assert "next" not in second.get_json() and "Link" not in second.headers
    for bad in ("-1", "abc", "1" * 19, "１"):
        answer = http.get(f"/screenings/{job}?cursor={bad}")
        assert answer.status_code == 400, bad


def test_finished_jobs_older_than_the_retention_are_purged_with_their_results(queue, hand):
    start = hand.at
    unfinished = queue.submit_batch(["d", "e"], studies=None, as_of=None)
    tasks, _ = queue.store.job_tasks_page(unfinished, 0, 10)
    queue.store.claim(tasks[0].id, "w", 60)
    queue.store.complete(tasks[0].id, "w", RESULT)  # old, but one task stays queued
    hand.at = start + timedelta(days=59)
    old = queue.submit_batch(["a", "b"], studies=None, as_of=None)
    finish(queue, old)
    hand.at = start + timedelta(days=61)
    recent = queue.submit_batch(["c"], studies=None, as_of=None)
    finish(queue, recent)
    hand.at = now_at = start + timedelta(days=90)  # old finished 31 days ago, recent 29
    now = now_at.timestamp()
    old_tasks = [t.id for t in queue.store.job_tasks(old)]

    assert queue.purge(now) == 1

    assert queue.job_status(old) is None
    assert all(queue.store.get_task(t) is None for t in old_tasks)  # the results are gone
    assert queue.job_status(recent)["state"] == "done"
    assert queue.job_status(unfinished)["progress"]["pending"] == 1
    assert queue.purge(now) == 0
    # Once the last task finishes, the retention counts from then.
    finish_rest = [t for t in queue.store.job_tasks(unfinished) if t.state != DONE]
    for task in finish_rest:
        queue.store.claim(task.id, "w", 60)
        queue.store.complete(task.id, "w", RESULT)
    assert queue.purge(now) == 0
    assert queue.purge(now + 31 * 86400) == 2  # recent and unfinished, a month later


def test_retention_is_a_setting_with_a_30_day_default(monkeypatch: Any):
    assert Settings().job_retention_days == 30
    assert Settings.from_env({"JOB_RETENTION_DAYS": "7"}).job_retention_days == 7
    from service.core.settings import SettingsError

    with pytest.raises(SettingsError):
        Settings.from_env({"JOB_RETENTION_DAYS": "0"})
