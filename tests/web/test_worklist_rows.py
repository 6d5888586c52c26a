"""The worklist's rows held per process: every view still shows what any writer put on FHIR."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from localfhir import start_local_server
from service.fhir import research_subject as rs
from service.fhir.errors import FhirError
from service.usecases.worklist_rows import (
    FULL_READ_SECONDS,
    OVERLAP,
    RowCache,
    StillReading,
    StudyRows,
)
from tests.support.workspace import COORDINATOR, Workspace, workspace

SLE = "refractory-sle-cart"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """The pages' clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    local = start_local_server()
    try:
        with workspace(local.base_url, tmp_path_factory.mktemp("rows")) as w:
            yield w
    finally:
        local.stop()


def _signed_in(ws: Workspace) -> Any:
    browser = ws.app.test_client()
    page = browser.get("/login").get_data(as_text=True)
    token = _TOKEN.search(page)
    assert token
    answer = browser.post("/login", data={"username": COORDINATOR[0],
                                          "password": COORDINATOR[2],
                                          "csrf_token": token.group(1)})
    assert answer.status_code == 302
    return browser


def _requests_of(ws: Workspace, browser: Any, path: str) -> tuple[int, str]:
    client = ws.app.extensions["eligibility"].screener.client()
    before = client.request_count
    answer = browser.get(path)
    assert answer.status_code == 200
    return client.request_count - before, answer.get_data(as_text=True)


def _write(ws: Workspace, method: str, subject: dict[str, Any]) -> None:
    # As another worker would: straight to the FHIR server, not through this app.
    entry: dict[str, Any] = {"request": {"method": method,
                                         "url": f"ResearchSubject/{subject['id']}"}}
    if method == "PUT":
        entry["resource"] = subject
    ws.client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [entry]})


def _row_html(page: str, patient: str) -> str:
    start = page.index(f">{patient}<")
    return page[start: page.index("</tr>", start)]


@pytest.mark.integration
def test_a_write_by_another_writer_shows_at_the_next_view_with_one_fhir_request(ws):
    clock = Clock()
    ws.app.extensions["pages"].clock = clock
    browser = _signed_in(ws)
    _, first = _requests_of(ws, browser, f"/?study={SLE}")  # the full read (or an earlier one)
    assert "Read from the FHIR server at" in first
    assert "withdrawn" not in _row_html(first, "seed-potential")
    # Another worker (not this process) records a workflow decision on the FHIR server.
    stored = ws.subject(SLE, "seed-potential")
    _write(ws, "PUT", {**stored, "status": "withdrawn"})
    clock.now += timedelta(seconds=5)
    sent, page = _requests_of(ws, browser, f"/?study={SLE}")
    assert "withdrawn" in _row_html(page, "seed-potential")
    assert sent == 1  # only what changed since the newest lastUpdated held
    # The other filters and pages come from the same rows, again with one small search.
    sent, page = _requests_of(ws, browser, f"/?study={SLE}&status=ineligible")
    assert sent == 1 and "seed-alt-high" in page and "seed-potential" not in page
    _write(ws, "PUT", stored)


@pytest.mark.integration
def test_a_deleted_subject_leaves_the_list_at_the_next_full_read(ws):
    clock = Clock()
    ws.app.extensions["pages"].clock = clock
    # As in a new process (the next view reads all); the periodic full read runs at once.
    ws.app.extensions["worklist_rows"] = RowCache(run_later=lambda task: task())
    browser = _signed_in(ws)
    assert _requests_of(ws, browser, f"/?study={SLE}")[0] >= 1
    gone = ws.subject(SLE, "seed-alt-high")
    _write(ws, "DELETE", gone)
    try:
        # A search by _lastUpdated cannot see a deletion: it stays until the full read ...
        clock.now += timedelta(seconds=FULL_READ_SECONDS - 1)
        assert ">seed-alt-high<" in _requests_of(ws, browser, f"/?study={SLE}")[1]
        # ... which comes FULL_READ_SECONDS after the last one.
        clock.now += timedelta(seconds=1)
        page = _requests_of(ws, browser, f"/?study={SLE}")[1]
        assert ">seed-alt-high<" not in page and ">seed-potential<" in page
        assert f"the whole list at {clock.now.strftime('%H:%M:%S')} UTC" in page
    finally:
        ws.app.extensions["eligibility"].screener.screen("seed-alt-high",
                                                         as_of=ws.settings.screen_as_of)


class Recording:
    """A FHIR client that answers from a list and records each search's parameters."""

    def __init__(self, answers: list[list[dict[str, Any]]]) -> None:
        self.answers = answers
        self.searches: list[dict[str, str]] = []

    def search(self, resource_type: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        assert resource_type == "ResearchSubject"
        self.searches.append(dict(params))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def search_population(self, resource_type: str, params: list[tuple[str, str]], *,
                          includes: bool = False) -> list[dict[str, Any]]:
        assert includes, "the worklist needs the included Patients"
        return self.search(resource_type, params)


def _subject(rid: str, pid: str, status: str, updated: str) -> dict[str, Any]:
    return {"resourceType": "ResearchSubject", "id": rid, "status": status,
            "meta": {"lastUpdated": updated, "versionId": "1"},
            "individual": {"reference": f"Patient/{pid}"},
            "study": {"reference": "ResearchStudy/s"},
            "extension": [{"url": rs.SCREENING_EXTENSION, "extension": [
                {"url": "status", "valueCode": status}]}]}


def test_changes_are_asked_for_since_the_newest_stamp_less_the_overlap_and_replace_rows():
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    client = Recording([
        [_subject("a", "p1", "ineligible", "2026-11-30T08:00:00.250Z"),
         _subject("b", "p2", "potential-candidate", "2026-11-30T08:30:00Z"),
         {"resourceType": "Patient", "id": "p1", "name": [{"text": "Ann"}]}],
        [_subject("a", "p1", "eligible", "2026-11-30T08:59:00Z")],
        FhirError("server down"),
    ])
    cache = RowCache(run_later=lambda task: task())
    rows, full = cache.rows(client, "ResearchStudy/s", now)
    assert [r.patient_id for r in rows] == ["p2", "p1"] and full == now
    assert "_lastUpdated" not in client.searches[0]
    rows, full = cache.rows(client, "ResearchStudy/s", now + timedelta(minutes=1))
    newest = datetime(2026, 11, 30, 8, 30, tzinfo=UTC) - OVERLAP
    assert client.searches[1]["_lastUpdated"] == "ge" + newest.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    # The changed subject replaced its row (now first: eligible), no row was added; its
    # patient's name stays when the answer holds no Patient.
    assert [(r.patient_id, r.computed, r.patient_name) for r in rows] == [
        ("p1", "eligible", "Ann"), ("p2", "potential-candidate", "")]
    assert full == now
    # A failing server serves nothing held: the error reaches the page.
    with pytest.raises(FhirError):
        cache.rows(client, "ResearchStudy/s", now + timedelta(minutes=2))


def test_a_held_row_keeps_only_what_the_pages_show():
    held = StudyRows()
    subject = _subject("a", "p1", "potential-candidate", "2026-11-30T08:00:00Z")
    subject["extension"].append({"url": rs.CRITERION_EXTENSION, "extension": [
        {"url": "id", "valueCode": "age"}, {"url": "result", "valueCode": "met"},
        {"url": "reason", "valueString": "age 14"}]})
    subject["extension"].append({"url": rs.CRITERION_EXTENSION, "extension": [
        {"url": "id", "valueCode": "inr"}, {"url": "result", "valueCode": "unknown"},
        {"url": "reason", "valueString": "no INR"},
        {"url": "evidence", "valueReference": {"reference": "Observation/o1"}}]})
    assert held.take([subject], datetime(2026, 11, 30, 9, 0, tzinfo=UTC)) == 1
    (row,) = held.sorted_rows()
    assert [c.id for c in row.criteria] == ["inr"] and row.criteria[0].evidence == ()
    assert row.next_actions == ["INR"] and row.resource == {}


def test_the_periodic_full_read_runs_once_beside_the_views_and_a_failed_one_is_retried():
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    a = _subject("a", "p1", "ineligible", "2026-11-30T08:00:00Z")
    b = _subject("b", "p2", "eligible", "2026-11-30T08:10:00Z")
    tasks: list[Any] = []
    client = Recording([[a, b], [], [], [], FhirError("server down"), [], [b], []])
    cache = RowCache(run_later=tasks.append, first_view_wait=0)
    with pytest.raises(StillReading):  # the first full read runs beside the view too
        cache.rows(client, "ResearchStudy/s", now)
    tasks.pop()()
    cache.rows(client, "ResearchStudy/s", now)
    later = now + timedelta(seconds=FULL_READ_SECONDS)
    # The view that finds the full read due is answered from the changes alone ...
    rows, full = cache.rows(client, "ResearchStudy/s", later)
    assert len(rows) == 2 and full == now and len(tasks) == 1
    # ... and the next one does not start a second full read while one is due to run.
    cache.rows(client, "ResearchStudy/s", later)
    assert len(tasks) == 1
    tasks.pop()()  # the server fails: nothing changes, the next view tries again
    rows, _ = cache.rows(client, "ResearchStudy/s", later)
    assert len(rows) == 2 and len(tasks) == 1
    tasks.pop()()  # "a" was deleted on the server: the full read drops it
    rows, full = cache.rows(client, "ResearchStudy/s", later)
    assert [r.patient_id for r in rows] == ["p2"] and full == later
    assert [("_lastUpdated" in s) for s in client.searches] == [
        False, True, True, True, False, True, False, True]


def test_the_overlap_is_searched_until_a_search_made_overlap_after_the_stamp_finds_nothing():
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    a = _subject("a", "p1", "ineligible", "2026-11-30T08:59:58Z")
    client = Recording([[a], [a], [a], [], []])
    cache = RowCache(run_later=lambda task: task())
    cache.rows(client, "ResearchStudy/s", now)
    stamp = datetime(2026, 11, 30, 8, 59, 58, tzinfo=UTC)

    def asked() -> str:
        return client.searches[-1]["_lastUpdated"]

    def at(moment: datetime) -> str:
        return "ge" + moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    cache.rows(client, "ResearchStudy/s", now + OVERLAP / 2)  # too soon to be sure
    assert asked() == at(stamp - OVERLAP)
    cache.rows(client, "ResearchStudy/s", now + OVERLAP)  # nothing newer, OVERLAP after
    assert asked() == at(stamp - OVERLAP)
    cache.rows(client, "ResearchStudy/s", now + OVERLAP * 2)
    assert asked() == at(stamp)  # settled: only from the newest stamp on
    rows, _ = cache.rows(client, "ResearchStudy/s", now + OVERLAP * 3)
    assert asked() == at(stamp) and [r.patient_id for r in rows] == ["p1"]


@pytest.mark.integration
def test_the_full_read_pages_past_the_caps_of_a_record_search(ws, monkeypatch):
    """A study holds more ResearchSubjects than one record search may page through (after
    `screen --all --every-patient`): the worklist still lists every one, with its name."""
    from service.fhir.client import FhirClient
    from service.usecases import worklist_rows

    screener = ws.app.extensions["eligibility"].screener
    capped = FhirClient(ws.settings.with_overrides(fhir_max_pages=2))
    monkeypatch.setattr(screener, "client", lambda: capped)
    # 17 subjects (the 18 seeds but seed-drug-induced, no candidate): 6 pages, over the cap
    monkeypatch.setattr(worklist_rows, "FHIR_PAGE", 3)
    ws.app.extensions["worklist_rows"] = RowCache(run_later=lambda task: task())
    try:
        _, page = _requests_of(ws, _signed_in(ws), f"/?study={SLE}")
    finally:
        capped.close()
    assert "All (17)" in page
    assert ">Haoran Wang<" in page and ">seed-myositis<" in page


class Later:
    """run_later for the tests: keeps the tasks until the test runs them."""

    def __init__(self) -> None:
        self.tasks: list[Any] = []

    def __call__(self, task: Any) -> None:
        self.tasks.append(task)

    def run(self) -> None:
        while self.tasks:
            self.tasks.pop(0)()


def test_a_first_read_longer_than_a_view_waits_says_still_reading_then_serves_it():
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    client = Recording([[_subject("a", "p1", "eligible", "2026-11-30T08:00:00Z")],
                        [], []])
    later = Later()
    cache = RowCache(run_later=later, first_view_wait=0)
    with pytest.raises(StillReading):
        cache.rows(client, "ResearchStudy/s", now)
    with pytest.raises(StillReading):  # a second view waits for the same read, starts none
        cache.rows(client, "ResearchStudy/s", now)
    assert len(later.tasks) == 1 and client.searches == []
    later.run()
    rows, full = cache.rows(client, "ResearchStudy/s", now)
    assert [r.patient_id for r in rows] == ["p1"] and full == now
    # The first read's rows are served; the view asked only for what changed since.
    assert [("_lastUpdated" in s) for s in client.searches] == [False, True]


def test_a_failed_first_read_shows_its_error_and_the_next_view_starts_another():
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    client = Recording([FhirError("server down"),
                        [_subject("a", "p1", "eligible", "2026-11-30T08:00:00Z")], []])
    later = Later()
    cache = RowCache(run_later=later, first_view_wait=0)
    with pytest.raises(StillReading):
        cache.rows(client, "ResearchStudy/s", now)
    later.run()
    with pytest.raises(FhirError):  # the failure reaches a page, never an empty list
        cache.rows(client, "ResearchStudy/s", now)
    with pytest.raises(StillReading):
        cache.rows(client, "ResearchStudy/s", now)
    later.run()
    rows, _ = cache.rows(client, "ResearchStudy/s", now)
    assert [r.patient_id for r in rows] == ["p1"]


@pytest.mark.integration
def test_the_page_says_the_list_is_being_read_and_reloads_until_it_is(ws):
    later = Later()
    ws.app.extensions["worklist_rows"] = RowCache(run_later=later, first_view_wait=0)
    browser = _signed_in(ws)
    answer = browser.get(f"/?study={SLE}")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "Reading the worklist from the FHIR server" in page
    assert '<meta http-equiv="refresh" content="3">' in page and SLE in page
    assert ">seed-potential<" not in page
    later.run()
    page = browser.get(f"/?study={SLE}").get_data(as_text=True)
    assert ">seed-potential<" in page and "Reading the worklist" not in page
