"""Coordinator pages through Flask's test client on the seeds: sign-in, roles, CSRF, writes."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from localfhir import start_local_server
from service.accounts.form_tokens import new_form_token
from service.fhir import research_subject as rs
from tests.support.workspace import AS_OF, COORDINATOR, VIEWER, Workspace, workspace

pytestmark = pytest.mark.integration
LN = "pediatric-ln-cart"
SLE = "refractory-sle-cart"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """A settable clock for the idle timeout."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    local = start_local_server()
    yield local.base_url
    local.stop()


@pytest.fixture(scope="module")
def ws(server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    with workspace(server, tmp_path_factory.mktemp("pages")) as w:
        yield w


def _token(client, path: str = "/login") -> str:
    found = _TOKEN.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def _sign_in(client, account=COORDINATOR):
    answer = client.post("/login", data={
        "username": account[0], "password": account[2], "csrf_token": _token(client)})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    return answer


def _observations(ws: Workspace, patient: str) -> list[dict]:
    return list(ws.client.search("Observation", {
        "subject": f"Patient/{patient}", "code": "urn:trial-eligibility:criterion|"
        + ",urn:trial-eligibility:criterion|".join(
            ("ecg", "venous-access", "contraception", "lung-lesions", "leukapheresis",
             "hemodynamic-stability"))}))


def test_every_page_needs_sign_in_and_writes_need_a_session(ws):
    client = ws.app.test_client()
    for path in ("/", "/patients/seed-potential", f"/studies/{LN}/log",
                 f"/studies/{LN}/log.csv", "/patients/seed-potential/sledai"):
        answer = client.get(path)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], path
    before = len(_observations(ws, "seed-potential"))
    token = _token(client)
    answer = client.post("/patients/seed-potential/confirm", data={
        "csrf_token": token, "study": LN, "criterion": "venous-access", "answer": "met",
        "date": AS_OF.isoformat()})
    assert answer.status_code == 401
    assert len(_observations(ws, "seed-potential")) == before


def test_wrong_password_is_refused_and_the_right_one_signs_in(ws):
    client = ws.app.test_client()
    answer = client.post("/login", data={"username": COORDINATOR[0], "password": "wrong" * 3,
                                         "csrf_token": _token(client)})
    assert answer.status_code == 401 and "Wrong user name or password" in answer.get_data(True)
    answer = client.post("/login", data={"username": "nobody", "password": "x" * 20,
                                         "csrf_token": _token(client)})
    assert answer.status_code == 401
    _sign_in(client)
    page = client.get("/").get_data(as_text=True)
    assert COORDINATOR[1] in page and "seed-potential" in page


def test_login_never_redirects_off_site(ws):
    client = ws.app.test_client()
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        answer = client.post("/login", data={
            "username": COORDINATOR[0], "password": COORDINATOR[2], "next": target,
            "csrf_token": _token(client)})
        assert answer.headers["Location"] == "/", target


def test_a_form_without_the_csrf_token_is_refused_and_writes_nothing(ws):
    client = ws.app.test_client()
    _sign_in(client)
    before = len(_observations(ws, "seed-potential"))
    for data in ({}, {"csrf_token": "forged"}):
        answer = client.post("/patients/seed-potential/confirm", data={
            **data, "study": LN, "criterion": "venous-access", "answer": "met",
            "date": AS_OF.isoformat()})
        assert answer.status_code == 400
    assert len(_observations(ws, "seed-potential")) == before


def test_a_viewer_reads_but_every_write_is_403_and_writes_nothing(ws):
    client = ws.app.test_client()
    _sign_in(client, VIEWER)
    assert client.get("/patients/seed-potential").status_code == 200
    token = _token(client, "/patients/seed-potential")
    before = len(_observations(ws, "seed-potential"))
    subject = ws.subject(LN, "seed-potential")
    for path, data in (
        ("confirm", {"study": LN, "criterion": "venous-access", "answer": "met",
                     "date": AS_OF.isoformat()}),
        ("workflow", {"study": LN, "status": "on-study"}),
        ("screen", {}),
        ("undo", {"ref": "Observation/x"}),
        ("sledai", {"date": AS_OF.isoformat(), "descriptor": "rash"}),
    ):
        answer = client.post(f"/patients/seed-potential/{path}", data={**data, "csrf_token": token})
        assert answer.status_code == 403, path
    assert len(_observations(ws, "seed-potential")) == before
    assert ws.subject(LN, "seed-potential")["meta"]["versionId"] == subject["meta"]["versionId"]


def test_confirmations_follow_api_md_per_patient_per_study_and_consent(ws):
    client = ws.app.test_client()
    _sign_in(client)
    token = _token(client, "/patients/seed-age-19")
    for study, criterion in ((SLE, "leukapheresis"), (SLE, "contraception"), (SLE, "consent")):
        answer = client.post("/patients/seed-age-19/confirm", data={
            "csrf_token": token, "form_token": new_form_token(), "study": study,
            "criterion": criterion, "answer": "met",
            "date": "2026-11-10", "note": "checked with the family"})
        assert answer.status_code == 302, answer.get_data(True)[:300]
    by_code = {o["code"]["coding"][0]["code"]: o for o in _observations(ws, "seed-age-19")}
    user = {"system": "urn:trial-eligibility:user", "value": COORDINATOR[0]}
    leuk = by_code["leukapheresis"]
    assert leuk["status"] == "final" and leuk["valueBoolean"] is True
    assert leuk["effectiveDateTime"] == "2026-11-10" and "focus" not in leuk
    assert leuk["performer"][0]["identifier"] == user
    assert leuk["note"][0]["text"] == "checked with the family"
    from service.web.pages.patient import per_study

    mapping = ws.app.extensions["eligibility"].screener.mappings.studies[SLE]
    crit = next(c for c in mapping.criteria if c.id == "contraception")
    contraception = by_code["contraception"]  # names the ResearchStudy when confirmed per study
    if per_study(crit):
        (focus,) = contraception["focus"]
        assert focus["reference"] == ws.subject(SLE, "seed-age-19")["study"]["reference"]
    else:
        assert "focus" not in contraception
    (consent,) = [c for c in ws.client.search("Consent", {"patient": "Patient/seed-age-19"})
                  if "performer" in c]  # the seed's own Consents name nobody
    assert consent["status"] == "active"
    assert consent["policy"] == [{"uri": f"urn:trial-eligibility:study:{SLE}"}]
    assert consent["performer"][0]["identifier"] == user
    crit = {c: _result(ws.subject(SLE, "seed-age-19"), c)
            for c in ("leukapheresis", "contraception", "consent")}
    assert crit == {"leukapheresis": "met", "contraception": "met", "consent": "met"}


def _result(subject: dict, criterion: str) -> str:
    for ext in subject["extension"]:
        if ext["url"] == rs.CRITERION_EXTENSION:
            parts = {p["url"]: p for p in ext["extension"]}
            if parts["id"]["valueCode"] == criterion:
                return parts["result"]["valueCode"]
    raise AssertionError(criterion)


def test_bad_confirmations_are_400_and_write_nothing(ws):
    client = ws.app.test_client()
    _sign_in(client)
    token = _token(client, "/patients/seed-potential")
    before = len(_observations(ws, "seed-potential"))
    good = {"csrf_token": token, "study": LN, "criterion": "venous-access", "answer": "met",
            "date": AS_OF.isoformat(), "form_token": new_form_token()}
    for change in ({"criterion": "hemoglobin"}, {"study": "nope"}, {"answer": "maybe"},
                   {"date": "2026-11-16"}, {"date": "15/11/2026"}, {"criterion": "ecg"},
                   {"form_token": ""}):
        answer = client.post("/patients/seed-potential/confirm", data={**good, **change})
        assert answer.status_code == 400, change
    assert client.post("/patients/..%2Fx/confirm", data=good).status_code in (400, 404)
    assert len(_observations(ws, "seed-potential")) == before


def test_session_cookie_is_httponly_samesite_and_secure_behind_https(ws, tmp_path, make_app):
    client = ws.app.test_client()
    cookie = _sign_in(client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure, _ = make_app(ws.settings, public_url="https://trials.example",
                         users_db=tmp_path / "u.sqlite")
    secure.extensions["pages"].accounts.add(COORDINATOR[0], "coordinator", COORDINATOR[2])
    c2 = secure.test_client()
    cookie = c2.post("/login", data={"username": COORDINATOR[0], "password": COORDINATOR[2],
                                     "csrf_token": _token(c2)}).headers["Set-Cookie"]
    assert "Secure" in cookie


def test_the_session_ends_after_the_idle_timeout(ws):
    clock = Clock()
    ws.app.extensions["pages"].clock = clock
    try:
        client = ws.app.test_client()
        _sign_in(client)
        clock.now += timedelta(minutes=29)
        assert client.get(f"/studies/{LN}/log").status_code == 200  # activity renews it
        clock.now += timedelta(minutes=29)
        assert client.get(f"/studies/{LN}/log").status_code == 200
        clock.now += timedelta(minutes=31)
        answer = client.get(f"/studies/{LN}/log")
        assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    finally:
        ws.app.extensions["pages"].clock = lambda: datetime.now(UTC)


def test_pages_send_a_strict_csp_and_frame_ancestors_is_configurable(ws, tmp_path, make_app):
    client = ws.app.test_client()
    _sign_in(client)
    for path in ("/login", "/", "/patients/seed-potential", f"/studies/{LN}/log"):
        answer = client.get(path)
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp  # no script at all
        assert "frame-ancestors 'self'" in csp
        assert answer.headers["Cache-Control"] == "no-store"
        assert "<script" not in answer.get_data(as_text=True)
    embedded, _ = make_app(ws.settings, frame_ancestors="https://ehr.example",
                           users_db=tmp_path / "u.sqlite")
    csp = embedded.test_client().get("/login").headers["Content-Security-Policy"]
    assert "frame-ancestors https://ehr.example" in csp


def test_worklist_filters_tabs_and_orders_closest_first(ws):
    client = ws.app.test_client()
    _sign_in(client)
    page = client.get(f"/?study={SLE}&status=ineligible").get_data(as_text=True)
    assert "seed-alt-high" in page and "seed-sle-eligible" not in page
    page = client.get(f"/?study={SLE}").get_data(as_text=True)
    first, middle, last = (page.index(p) for p in
                           ("seed-sle-eligible", "seed-potential", "seed-alt-high"))
    assert first < middle < last
    assert client.get("/?study=nope").status_code == 404


def test_prescreening_log_csv_counts_and_neutralises_formulas(ws):
    client = ws.app.test_client()
    _sign_in(client)
    answer = client.get(f"/studies/{LN}/log.csv")
    assert answer.mimetype == "text/csv"
    lines = answer.get_data(as_text=True).strip().splitlines()
    assert lines[0].startswith('"patient","name","computed status"')
    # 17 of the 18 seed patients are candidates (seed-drug-induced has no SLE diagnosis).
    assert len(lines) == 1 + 17
    from service.web.pages.log_page import _cell, bar_chart

    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and _cell("ok") == "ok"
    assert "<script" not in str(bar_chart([("<script>x</script>", 2)], "t"))


def test_logs_name_users_and_ids_but_no_patient_names(ws, caplog):
    caplog.set_level(logging.DEBUG)
    client = ws.app.test_client()
    _sign_in(client)
    client.get("/")
    client.get("/patients/seed-potential")
    token = _token(client, "/patients/seed-potential")
    client.post("/patients/seed-potential/confirm", data={
        "csrf_token": token, "form_token": new_form_token(), "study": SLE,
        "criterion": "lung-lesions", "answer": "not-met",
        "date": AS_OF.isoformat()})
    text = caplog.text
    assert f"user {COORDINATOR[0]} recorded lung-lesions" in text
    for name in ("Haoran", "Wang", "correct horse"):
        assert name not in text
