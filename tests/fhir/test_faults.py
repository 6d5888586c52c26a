"""The FHIR server fails under the service (through the fault proxy): down at start, killed
mid-batch, too slow, 429/503 storms, failing writes. Queued screenings wait and complete after
recovery; no ResearchSubject version ever carries a status computed from partial data, and
none is duplicated."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.core.settings import Settings
from service.fhir import retries as fhir_retries
from service.queue import jobs
from tests.support.fault_proxy import FaultProxy, is_read, is_transaction
from tests.support.seed_population import AS_OF, Population
from tests.support.server_state import assert_written_once_from_complete_data, subjects, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

# Small timeouts and retry budgets keep each scenario at a few seconds.
FAST = {
    "fhir_timeout": 0.5,
    "fhir_max_retries": 1,
    "job_retry_max_seconds": 0.3,
    "job_lease_seconds": 10.0,
    "coalesce_seconds": 0.0,
}


@pytest.fixture(autouse=True)
def _short_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fhir_retries, "BACKOFF_BASE_SECONDS", 0.02)


@pytest.fixture
def make_service(make_app, proxy: FaultProxy, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """make_service(**overrides) -> Flask app over the proxy, its queue's workers not started."""

    def _make(**overrides: Any) -> Any:
        settings = Settings().with_overrides(
            fhir_base_url=proxy.base_url, queue_url=f"sqlite:///{tmp_path / 'queue.sqlite'}",
            **{**FAST, **overrides},
        )
        app, _ = make_app(settings)
        return app

    yield _make


def submit(app: Any, pids: list[str]) -> str:
    response = app.test_client().post(
        "/screenings", json={"patients": pids, "asOf": AS_OF.isoformat()})
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()["job"]


def tasks(app: Any, job: str) -> list[Any]:
    return app.extensions["eligibility"].queue.store.job_tasks(job)


def finished(app: Any, job: str) -> dict[str, Any]:
    queue = app.extensions["eligibility"].queue
    return wait_until(lambda: (s := queue.job_status(job))["state"] == "done" and s,
                      timeout=90, what=f"job {job} done")


def assert_all_screened(app: Any, job: str, population: Population, pids: list[str]) -> None:
    """Every patient done (none failed, none lost), each written once from complete data."""
    status = finished(app, job)
    assert status["progress"] == {"total": len(pids), "done": len(pids), "failed": 0,
                                  "pending": 0}
    for entry in status["patients"]:
        pid = entry["patient"].removeprefix("Patient/")
        ids = assert_written_once_from_complete_data(population.base_url, pid,
                                                     population.bundles[pid])
        assert entry["researchSubjects"] == {k: f"ResearchSubject/{v}" for k, v in ids.items()}


def wait_for_retries(app: Any, job: str, attempts: int) -> None:
    """Every task was retried `attempts` times and is still waiting: none failed or vanished."""

    def retried() -> bool:
        found = tasks(app, job)
        assert not [t for t in found if t.state == "failed"], "a temporary failure failed a job"
        return all(t.attempts >= attempts and t.state in ("queued", "running") for t in found)

    wait_until(retried, what=f"every task retried {attempts} times")


def test_fhir_down_at_start_the_service_starts_says_why_and_jobs_wait(
    make_service, proxy, population
):
    pids = population.add(4)
    proxy.down()
    app = make_service()  # nothing at start needs the FHIR server
    http = app.test_client()
    ready = http.get("/readyz")
    assert ready.status_code == 503
    checks = ready.get_json()["checks"]
    assert proxy.base_url in checks["fhir"] and "did not answer" in checks["fhir"]
    assert checks["mappings"] == "ok" and checks["queue"] == "ok"

    job = submit(app, pids)
    app.extensions["eligibility"].queue.start_embedded(2)
    wait_for_retries(app, job, attempts=2)
    assert all(subjects(population.base_url, pid) == [] for pid in pids)

    proxy.up()
    assert_all_screened(app, job, population, pids)
    assert http.get("/readyz").status_code == 200


def test_fhir_killed_mid_batch_reads_and_writes_recover_without_partial_writes(
    make_service, proxy, population
):
    pids = population.add(8)
    # Small pages: a record takes several read rounds, so a kill can land between them.
    app = make_service(fhir_page_size=3)
    proxy.inject("kill", when=is_read, skip=6, count=8)
    # Writes that reach the server but whose answer is lost: the retry must not duplicate.
    proxy.inject("kill", when=is_transaction, skip=1, count=3)
    job = submit(app, pids)
    app.extensions["eligibility"].queue.start_embedded(2)
    assert_all_screened(app, job, population, pids)
    killed = proxy.requests("kill")
    assert len([s for s in killed if is_read(s)]) == 8
    assert len([s for s in killed if is_transaction(s)]) == 3


def test_fhir_slower_than_the_timeout_then_recovers(make_service, proxy, population):
    pids = population.add(4)
    app = make_service()
    proxy.inject("slow", when=is_read, delay=1.5, count=4)
    # A write held past the timeout reaches the server late, after the client's retry.
    proxy.inject("slow", when=is_transaction, delay=1.5, count=1)
    job = submit(app, pids)
    app.extensions["eligibility"].queue.start_embedded(2)
    assert_all_screened(app, job, population, pids)
    assert len(proxy.requests("slow")) == 5


def test_429_and_503_storms_with_retry_after(make_service, proxy, population):
    pids = population.add(4)
    app = make_service()
    proxy.inject("storm", status=429, retry_after="1", count=3)
    proxy.inject("storm", status=503, retry_after="1", count=3)
    job = submit(app, pids)
    app.extensions["eligibility"].queue.start_embedded(2)
    assert_all_screened(app, job, population, pids)
    assert len(proxy.requests("storm")) == 6


def test_a_long_retry_after_is_passed_on_and_honoured_by_the_queue(
    make_service, proxy, population, monkeypatch
):
    monkeypatch.setattr(jobs, "RETRY_BASE_SECONDS", 0.05)
    pids = population.add(2)
    app = make_service(job_retry_max_seconds=3.0)
    proxy.inject("storm", status=429, retry_after="120")
    # The REST answer passes the server's hint on instead of blocking the request.
    answer = app.test_client().get(f"/patients/{pids[0]}/eligibility?asOf={AS_OF}")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "120"
    # A queued screening waits as long as the server asked (within JOB_RETRY_MAX_SECONDS),
    # not the queue's own shorter backoff.
    job = submit(app, pids)
    queue = app.extensions["eligibility"].queue
    for task in tasks(app, job):
        queue._execute(task.id)
    for task in tasks(app, job):
        assert task.state == "queued" and task.attempts == 1
        assert task.not_before - task.updated >= 2.5
    proxy.clear()
    queue.start_embedded(2)
    assert_all_screened(app, job, population, pids)


def test_failing_write_transactions_write_nothing_until_they_succeed(
    make_service, proxy, population
):
    pids = population.add(4)
    app = make_service()
    proxy.inject("fail", status=500, when=is_transaction)
    now = app.test_client().post("/screenings?wait=true",
                                 json={"patients": [pids[0]], "asOf": AS_OF.isoformat()})
    assert now.status_code == 503
    assert int(now.headers["Retry-After"]) > 0
    job = submit(app, pids)
    app.extensions["eligibility"].queue.start_embedded(2)
    wait_for_retries(app, job, attempts=2)
    assert all(subjects(population.base_url, pid) == [] for pid in pids)
    assert proxy.requests("fail") and all(is_transaction(s) for s in proxy.requests("fail"))

    proxy.clear()
    assert_all_screened(app, job, population, pids)
