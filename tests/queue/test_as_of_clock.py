"""One clock decides "today" at submission: a job queued on day D and run on D+1 screens as of D."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from service.core.clock import Clock
from service.queue.jobs import JobQueue
from tests.support.fakes import FakeScreener, wait_until

DAY_D = datetime(2026, 11, 15, 23, 59, tzinfo=UTC)


class HandClock:
    """A time source the test moves by hand (no sleeps)."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def queued_then_next_day(settings):
    """(queue, screener, hand, clock): a memory queue whose worker starts only when told."""
    s = settings.with_overrides(queue_url="memory://", coalesce_seconds=0.0)
    hand = HandClock(DAY_D)
    clock = Clock(hand)
    screener = FakeScreener(s)
    queue = JobQueue(s, screener, clock=clock)
    yield queue, screener, hand
    queue.stop()


def _run_all(queue: JobQueue, job: str) -> dict:
    queue.start_embedded(1)
    return wait_until(lambda: (st := queue.job_status(job))["state"] == "done" and st,
                      what="job done")


def test_trigger_queued_on_day_d_and_run_on_d_plus_1_screens_as_of_d(queued_then_next_day):
    queue, screener, hand = queued_then_next_day
    submitted = queue.enqueue_screening("p1", source="test")
    hand.at = DAY_D + timedelta(minutes=2)  # past midnight before any worker ran
    status = _run_all(queue, submitted.job_id)
    assert [c[2] for c in screener.calls] == [date(2026, 11, 15)]
    assert status["asOf"] == "2026-11-15"
    assert status["patients"][0]["result"]["asOf"] == "2026-11-15"


def test_batch_without_as_of_keeps_its_submission_day(queued_then_next_day):
    queue, screener, hand = queued_then_next_day
    job = queue.submit_batch(["a", "b"], studies=None, as_of=None)
    hand.at = DAY_D + timedelta(days=1)
    _run_all(queue, job)
    assert {c[2] for c in screener.calls} == {date(2026, 11, 15)}


def test_screen_as_of_pins_the_queue_too(settings):
    s = settings.with_overrides(queue_url="memory://", screen_as_of=date(2025, 1, 2))
    queue = JobQueue(s, FakeScreener(s))
    try:
        job = queue.submit_batch(["a"], studies=None, as_of=None)
        assert queue.job_status(job)["asOf"] == "2025-01-02"
    finally:
        queue.stop()


def test_clock_today_is_pinned_but_now_is_not():
    hand = HandClock(DAY_D)
    clock = Clock(hand, as_of=date(2020, 5, 5))
    assert clock.today() == date(2020, 5, 5)
    assert clock() == clock.now() == DAY_D
    assert Clock(hand).today() == date(2026, 11, 15)
