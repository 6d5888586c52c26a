"""SCREEN_AS_OF (the app's one Clock) decides "today" for REST, the queue and the worker."""

from __future__ import annotations

from datetime import date

from tests.support.fakes import wait_until

PINNED = date(2025, 3, 4)


def test_eligibility_without_as_of_uses_the_app_clock(make_app):
    app, screener = make_app(screen_as_of=PINNED)
    assert app.test_client().get("/patients/1/eligibility").status_code == 200
    assert screener.calls[0][2] == PINNED


def test_screening_now_without_as_of_uses_the_app_clock(make_app):
    app, screener = make_app(screen_as_of=PINNED)
    response = app.test_client().post("/screenings?wait=true", json={"patients": ["7"]})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert screener.calls[0][2] == PINNED


def test_queued_screening_keeps_the_date_decided_at_submission(make_app):
    app, screener = make_app(screen_as_of=PINNED, queue_url="memory://")
    response = app.test_client().post("/screenings", json={"patients": ["8"]})
    assert response.status_code == 202
    assert response.get_json()["asOf"] == PINNED.isoformat()
    app.extensions["eligibility"].clock.as_of = date(2030, 1, 1)  # the calendar moves on
    queue = app.extensions["eligibility"].queue
    queue.start_embedded(1)
    job = response.get_json()["job"]
    wait_until(lambda: queue.job_status(job)["state"] == "done", what="job done")
    assert screener.calls[0][2] == PINNED


def test_pages_and_services_share_one_clock(make_app):
    app, _ = make_app()
    assert app.extensions["pages"].clock is app.extensions["eligibility"].clock
    assert app.extensions["eligibility"].queue.clock is app.extensions["eligibility"].clock
