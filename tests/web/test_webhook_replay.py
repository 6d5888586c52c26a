"""Webhook replay (issue 13, finding 11): each accepted signature is remembered in the job store
(SQLite or Redis) until its timestamp leaves the window, so a captured request sent again is
refused (409), also after the screening it queued was taken by a worker (when a new trigger
would no longer join it), and from another web process sharing the store. A timestamp more
than MAX_FUTURE_SECONDS ahead is refused."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from service.core.settings import Settings
from service.web.webhooks import MAX_FUTURE_SECONDS, MAX_SKEW_SECONDS, sign

pytestmark = pytest.mark.security

SECRET = "webhook-secret-for-replay-tests-0123"


@pytest.fixture
def apps(make_app: Any, queue_url: str) -> list[Any]:
    """Two apps on one job store, as two gunicorn workers are."""
    settings = Settings().with_overrides(queue_url=queue_url, webhook_secret=SECRET,
                                         coalesce_seconds=0.0)
    return [make_app(settings)[0], make_app(settings)[0]]


def signed(body: bytes, stamp: int) -> dict[str, str]:
    return {"X-Timestamp": str(stamp), "X-Signature": sign(SECRET, str(stamp), body),
            "Content-Type": "application/json"}


def jobs(app: Any, job_ids: list[str]) -> list[dict[str, Any]]:
    return [app.extensions["eligibility"].queue.job_status(j) for j in job_ids]


def test_a_replay_after_the_coalescing_window_is_refused_not_rerun(apps):
    first_app, second_app = apps
    body = json.dumps({"patient": "w1"}).encode()
    headers = signed(body, int(time.time()) - 10)
    accepted = first_app.test_client().post("/webhooks/screening", data=body, headers=headers)
    assert accepted.status_code == 202
    job = accepted.get_json()["job"]
    # A worker takes the screening: from now on a new trigger would start a new job.
    store = first_app.extensions["eligibility"].queue.store
    [task] = store.job_tasks(job)
    assert store.claim(task.id, "worker-1", 60) is not None
    for app in apps:  # the same process, and another one sharing the store
        replay = app.test_client().post("/webhooks/screening", data=body, headers=headers)
        assert replay.status_code == 409, replay.get_data(as_text=True)
        assert replay.get_json()["type"].endswith(":webhook-replay")
    assert store.queued_due(time.time() + 3600) == []  # nothing new was queued
    # A fresh signature of the same body (a new timestamp) is a new, accepted request.
    fresh = second_app.test_client().post("/webhooks/screening", data=body,
                                          headers=signed(body, int(time.time())))
    assert fresh.status_code == 202 and fresh.get_json()["job"] != job


def test_the_signature_is_remembered_for_the_whole_window(apps):
    app, _ = apps
    body = json.dumps({"patient": "w2"}).encode()
    headers = signed(body, int(time.time()) - 5)
    assert app.test_client().post("/webhooks/screening", data=body,
                                  headers=headers).status_code == 202
    store = app.extensions["eligibility"].queue.store
    key = f"webhook-signature:{headers['X-Signature']}"
    # Still remembered: remember_once refuses it again (it stays until the stamp is stale).
    assert store.remember_once(key, 1) is False


@pytest.mark.parametrize(("ahead", "status"), [
    (MAX_FUTURE_SECONDS - 2, 202), (MAX_FUTURE_SECONDS + 5, 401), (290, 401),
    (MAX_SKEW_SECONDS + 60, 401),
])
def test_future_timestamps_are_bounded(apps, ahead, status):
    app, _ = apps
    body = json.dumps({"patient": f"f{ahead}"}).encode()
    answer = app.test_client().post("/webhooks/screening", data=body,
                                    headers=signed(body, int(time.time()) + ahead))
    assert answer.status_code == status
