"""The access audit (docs/deployment.md "Access audit"): every page showing a patient, every
CSV export, every confirmation and workflow change is one JSON line in AUDIT_LOG with who,
when, what, which patient ids, outcome and request id; never a patient's name. With
AUDIT_FHIR=1 the entries become IHE BALP AuditEvents on the FHIR server, sent in the
background; one the server does not take is recorded in the file as not delivered. Under
gunicorn (2 workers appending to one file) each view is exactly one whole line."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from localfhir import start_local_server
from service.accounts.form_tokens import new_form_token
from service.accounts.store import Accounts
from service.core.settings import Settings, SettingsError
from service.fhir.audit_event import BALP, audit_event
from service.usecases.access_audit import AuditTrail
from tests.support.log_scan import seed_patients
from tests.support.workspace import COORDINATOR, Workspace, workspace
from tests.web.test_gunicorn_logs import gunicorn, seeded  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.security]
LN = "pediatric-ln-cart"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    local = start_local_server()
    yield local.base_url
    local.stop()


@pytest.fixture(scope="module")
def ws(server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    folder = tmp_path_factory.mktemp("audit")
    with workspace(server, folder, audit_log=str(folder / "audit.jsonl")) as w:
        yield w


def entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _sign_in(client: Any) -> None:
    token = _TOKEN.search(client.get("/login").get_data(as_text=True)).group(1)
    answer = client.post("/login", data={"username": COORDINATOR[0],
                                         "password": COORDINATOR[2], "csrf_token": token})
    assert answer.status_code == 302


def _names() -> set[str]:
    found = set()
    for patient in seed_patients():
        for name in patient.get("name") or ():
            found.update(n for n in [name.get("family"), *(name.get("given") or ())] if n)
    return {n for n in found if len(n) > 2}


def test_each_view_export_and_change_is_one_entry_with_who_what_and_which_patient(ws):
    path = Path(ws.settings.audit_log)
    client = ws.app.test_client()
    _sign_in(client)
    before = len(entries(path))
    rid = f"audit-{uuid.uuid4().hex[:10]}"
    views = [
        ("/patients/seed-potential", "patient-view", "read"),
        ("/patients/seed-potential/sledai", "sledai-view", "read"),
        ("/", "worklist-view", "query"),
        (f"/studies/{LN}/log", "log-view", "query"),
        (f"/studies/{LN}/log.csv", "log-export", "query"),
    ]
    for url, _, _ in views:
        assert client.get(url, headers={"X-Request-ID": f"{rid}-{len(url)}"}).status_code == 200
    version = ws.subject(LN, "seed-potential")["meta"]["versionId"]
    changed = client.post("/patients/seed-potential/workflow", headers={"X-Request-ID": rid},
                          data={"csrf_token": _TOKEN.search(client.get(
                              "/patients/seed-potential").get_data(True)).group(1),
                                "study": LN, "status": "pending-on-study",
                                "version": version})
    assert changed.status_code == 302
    got = entries(path)[before:]
    # One per request: the five views, the page read for the form, the workflow change.
    assert [e["action"] for e in got] == [
        "patient-view", "sledai-view", "worklist-view", "log-view", "log-export",
        "patient-view", "workflow-changed"]
    for entry, (url, action, pattern) in zip(got, views, strict=False):
        assert entry["action"] == action
        assert entry["user"] == COORDINATOR[0]
        assert entry["pattern"] == pattern and entry["outcome"] == "success"
        assert entry["request_id"] == f"{rid}-{len(url)}" and entry["path"] == url
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert got[0]["patients"] == ["seed-potential"]
    # A list or an export names every patient it showed.
    exported = got[4]["patients"]
    assert len(exported) > 5 and "seed-potential" in exported and exported == sorted(exported)
    assert got[2]["patients"]  # the worklist's rows
    workflow = got[-1]
    assert (workflow["pattern"], workflow["study"], workflow["request_id"]) == (
        "update", LN, rid)
    text = path.read_text(encoding="utf-8")
    assert not [n for n in _names() if n in text]  # no patient names, ever


def test_a_view_without_sign_in_is_recorded_as_denied(ws):
    path = Path(ws.settings.audit_log)
    before = len(entries(path))
    assert ws.app.test_client().get("/patients/seed-potential").status_code == 302
    (entry,) = entries(path)[before:]
    assert entry["user"] is None and entry["outcome"] == "denied"
    assert entry["patients"] == ["seed-potential"]


def test_a_confirmation_is_a_create_entry(ws):
    path = Path(ws.settings.audit_log)
    client = ws.app.test_client()
    _sign_in(client)
    page = client.get("/patients/seed-potential").get_data(True)
    before = len(entries(path))
    answer = client.post("/patients/seed-potential/confirm", data={
        "csrf_token": _TOKEN.search(page).group(1), "study": LN, "criterion": "venous-access",
        "answer": "met", "date": "2026-11-01", "form_token": new_form_token()})
    assert answer.status_code == 302
    (entry,) = entries(path)[before:]
    assert (entry["action"], entry["pattern"], entry["study"]) == (
        "confirmation-recorded", "create", LN)


class _Refusing:
    """A FHIR client whose batch fails (the server is down)."""

    def batch(self, bundle: dict) -> dict:
        from service.fhir.errors import FhirTemporaryError

        raise FhirTemporaryError("connection refused")


def test_an_audit_event_the_fhir_server_does_not_take_is_recorded_as_not_delivered(tmp_path):
    settings = Settings().with_overrides(audit_log=str(tmp_path / "a.jsonl"), audit_fhir=True)
    trail = AuditTrail(settings, client=_Refusing)
    trail._start_sender = lambda: None  # type: ignore[method-assign]  (delivered by hand)
    entry = trail.record(action="patient-view", pattern="read", user="casey",
                         patients=["p1"], outcome="success", request_id="r1")
    assert entry["fhir"] == "queued"
    trail.deliver([trail._waiting.get_nowait()])
    first, second = entries(tmp_path / "a.jsonl")
    assert first["id"] == entry["id"]
    assert second["event"] == "fhir-not-delivered" and second["entry"] == entry["id"]
    assert "FhirTemporaryError" in second["reason"]


def test_audit_events_reach_the_fhir_server_in_the_balp_shapes(server, tmp_path):
    from service.fhir.client import FhirClient

    settings = Settings().with_overrides(fhir_base_url=server, audit_fhir=True,
                                         audit_log=str(tmp_path / "a.jsonl"))
    with FhirClient(settings) as client:
        trail = AuditTrail(settings, client=lambda: client)
        trail._start_sender = lambda: None  # type: ignore[method-assign]
        for pattern in ("read", "query", "create", "update"):
            trail.record(action=f"x-{pattern}", pattern=pattern, user="casey",
                         patients=["seed-potential"], outcome="success",
                         request_id=f"rid-{pattern}")
        trail.deliver([trail._waiting.get_nowait() for _ in range(4)])
        assert len(entries(tmp_path / "a.jsonl")) == 4  # nothing marked undelivered
        stored = list(client.search("AuditEvent", {"_count": "100"}))
    mine = [e for e in stored if any(
        (x.get("what") or {}).get("identifier", {}).get("value", "").startswith("rid-")
        for x in e.get("entity") or ())]
    assert {e["meta"]["profile"][0].removeprefix(BALP) for e in mine} >= {
        "PatientRead", "PatientQuery", "PatientCreate", "PatientUpdate"}
    assert {e["action"] for e in mine} >= {"R", "E", "C", "U"}
    event = audit_event({"pattern": "read", "action": "patient-view", "user": "casey",
                         "patients": ["p1"], "time": "2026-12-01T00:00:00.000Z",
                         "outcome": "success", "request_id": "r"})
    assert event["agent"][0]["who"]["identifier"]["value"] == "casey"
    assert event["entity"][0]["what"] == {"reference": "Patient/p1"}
    assert event["outcome"] == "0" and event["subtype"][0]["code"] == "read"


def test_a_bad_audit_log_stops_the_start_with_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    for value, says in ((str(tmp_path), "is a directory"),
                        (str(tmp_path / "file" / "audit.jsonl"), "not a writable directory")):
        with pytest.raises(SettingsError, match=says) as raised:
            Settings.from_env({"AUDIT_LOG": value})
        assert "\n" not in str(raised.value) and "AUDIT_LOG=" in str(raised.value)
    with pytest.raises(SettingsError, match="AUDIT_FHIR"):
        Settings.from_env({"AUDIT_FHIR": "maybe"})
    assert Settings.from_env({"AUDIT_LOG": "-"}).audit_log == "-"


@pytest.mark.slow
def test_under_gunicorn_each_view_is_exactly_one_whole_line(gunicorn, seeded, tmp_path):  # noqa: F811
    audit = tmp_path / "audit.jsonl"
    users = tmp_path / "users.sqlite"
    Accounts(users).add(COORDINATOR[0], "coordinator", COORDINATOR[2], display=COORDINATOR[1])
    server = gunicorn(seeded.base_url, AUDIT_LOG=str(audit), USERS_DB=str(users),
                      SESSION_SECRET="s" * 48, GUNICORN_THREADS="2")
    http = requests.Session()
    token = _TOKEN.search(http.get(f"{server.url}/login", timeout=10).text).group(1)
    assert http.post(f"{server.url}/login", timeout=10, allow_redirects=False, data={
        "username": COORDINATOR[0], "password": COORDINATOR[2],
        "csrf_token": token}).status_code == 302
    pids = [p["id"] for p in seed_patients()]
    views = [(pid, f"view-{i}-{uuid.uuid4().hex[:8]}") for i, pid in enumerate(pids * 3)]

    def view(item: tuple[str, str]) -> int:
        pid, rid = item
        return http.get(f"{server.url}/patients/{pid}", headers={"X-Request-ID": rid},
                        timeout=120).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(view, views)) == {200}
    server.stop()
    lines = audit.read_text(encoding="utf-8").splitlines()
    parsed = [json.loads(line) for line in lines]  # a torn or interleaved line fails here
    by_request = {e["request_id"]: e for e in parsed if e["action"] == "patient-view"}
    assert len([e for e in parsed if e["action"] == "patient-view"]) == len(views)
    for pid, rid in views:
        assert by_request[rid]["patients"] == [pid] and by_request[rid]["user"] == COORDINATOR[0]
    assert not [n for n in _names() if n in audit.read_text(encoding="utf-8")]


def _append_many(path: str, writer: int) -> None:
    trail = AuditTrail(Settings().with_overrides(audit_log=path))
    for i in range(1500):
        trail.record(action="patient-view", pattern="read", user=f"user{writer}",
                     patients=[f"p{writer}-{i}"], outcome="success", request_id=f"{writer}-{i}")


def test_processes_appending_at_once_never_tear_a_line(tmp_path):
    import multiprocessing

    path = str(tmp_path / "audit.jsonl")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(path, n)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    parsed = entries(Path(path))  # a torn or interleaved line does not parse
    assert len(parsed) == 4 * 1500
    assert len({e["request_id"] for e in parsed}) == 4 * 1500


class _Stuck:
    """A FHIR client whose batch hangs until released (a FHIR server that stopped answering)."""

    def __init__(self) -> None:
        import threading

        self.entered, self.release, self.done = (threading.Event(), threading.Event(),
                                                 threading.Event())

    def batch(self, bundle: dict) -> dict:
        self.entered.set()
        try:
            assert self.release.wait(10)
            return {"entry": [{"response": {"status": "201 Created"}} for _ in bundle["entry"]]}
        finally:
            self.done.set()


def test_a_hanging_fhir_server_does_not_hold_up_the_page(ws, tmp_path):
    stuck = _Stuck()
    settings = ws.settings.with_overrides(audit_fhir=True, audit_log=str(tmp_path / "a.jsonl"))
    before = ws.app.extensions["access_audit"]
    ws.app.extensions["access_audit"] = AuditTrail(settings, client=lambda: stuck)
    try:
        client = ws.app.test_client()
        _sign_in(client)
        assert client.get("/patients/seed-potential").status_code == 200
        assert stuck.entered.wait(30)  # the AuditEvent is being sent...
        assert client.get("/patients/seed-potential").status_code == 200  # ... pages answer
        assert not stuck.done.is_set()  # while it is still on its way
        views = [e for e in entries(tmp_path / "a.jsonl") if e["action"] == "patient-view"]
        assert len(views) == 2 and {e["fhir"] for e in views} == {"queued"}
    finally:
        stuck.release.set()
        ws.app.extensions["access_audit"] = before
