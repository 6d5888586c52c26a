"""The coordinator workspace in a real browser (Chromium via Playwright) on the seeds.

A coordinator signs in, takes seed-potential from potential candidate to eligible and on
study in the LN study, scores SLEDAI-2K for seed-sledai-6, and every step is checked on the
page AND in the FHIR record (with the Provenance naming the user). Each page is checked with
axe-core and saved as screenshots at 1280x800 and 768x1024 under var/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from localfhir import start_local_server
from service.fhir import research_subject as rs
from tests.support.browser import launch, screenshot, serious_violations
from tests.support.live_app import serve
from tests.support.workspace import COORDINATOR, VIEWER, Workspace, workspace

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]
LN = "pediatric-ln-cart"
SLE = "refractory-sle-cart"
LN_MANUAL = ("venous-access", "consent", "hemodynamic-stability")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str]]:
    server = start_local_server()
    try:
        with workspace(server.base_url, tmp_path_factory.mktemp("pages")) as w, serve(w.app) as url:
            yield w, url
    finally:
        server.stop()


def _context(browser: Any) -> Any:
    # bypass_csp lets the test inject axe-core; the pages themselves run no script.
    return browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)


def _sign_in(page: Any, url: str, account: tuple[str, str, str]) -> None:
    page.goto(url + "/")
    assert page.url.startswith(url + "/login")
    page.fill("#username", account[0])
    page.fill("#password", account[2])
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _check(page: Any, name: str) -> None:
    assert serious_violations(page) == [], f"axe-core on {name}"
    screenshot(page, name)


def _manual_criterion(page: Any, study: str, criterion: str) -> None:
    item = page.locator(f"#{study}-{criterion}")
    item.locator("input[name=answer][value=met]").check()
    item.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "Recorded:" in page.locator(".flashes").inner_text()


def _criterion_parts(subject: dict, criterion: str) -> dict[str, list]:
    for ext in subject["extension"]:
        if ext["url"] != rs.CRITERION_EXTENSION:
            continue
        parts: dict[str, list] = {}
        for p in ext["extension"]:
            parts.setdefault(p["url"], []).append(next(v for k, v in p.items() if k != "url"))
        if parts["id"] == [criterion]:
            return parts
    raise AssertionError(f"no criterion {criterion}")


def _provenance_for(w: Workspace, ref: str) -> list[dict]:
    return [p for p in w.client.search("Provenance", {"target": ref})]


def test_sign_in_worklist_confirm_to_eligible_workflow_and_rescreen(browser, ws):
    w, url = ws
    context = _context(browser)
    page = context.new_page()
    page.goto(url + "/")
    _check(page, "login")
    _sign_in(page, url, COORDINATOR)
    assert page.locator("h1").inner_text() == "Worklist"
    assert COORDINATOR[1] in page.locator(".who").inner_text()
    _check(page, "worklist")
    # closest first: the eligible ones before the potential candidates before the ineligible
    statuses = page.locator("table.worklist tbody tr td:nth-child(2)").all_inner_texts()
    order = {"eligible": 0, "potential-candidate": 1, "ineligible": 2}
    assert [order[s.strip()] for s in statuses] == sorted(order[s.strip()] for s in statuses)

    page.locator("tr", has_text="seed-potential").get_by_role("link").first.click()
    page.wait_for_load_state()
    assert page.url.endswith("/patients/seed-potential")
    ln = page.locator(f"#study-{LN}")
    assert "potential-candidate" in ln.locator(".status-line").inner_text()
    _check(page, "patient")

    for criterion in LN_MANUAL:
        _manual_criterion(page, LN, criterion)
    ln = page.locator(f"#study-{LN}")
    assert "Computed: eligible" in ln.locator(".status-line").inner_text()
    for criterion in LN_MANUAL:
        assert page.locator(f"#{LN}-{criterion} .badge").first.inner_text() == "met"
    _check(page, "patient-confirmed")

    # ... and in the FHIR record: the ResearchSubject, the confirmations, their Provenance
    subject = w.subject(LN, "seed-potential")
    assert rs.computed_status(subject) == "eligible" and subject["status"] == "eligible"
    for criterion in LN_MANUAL:
        parts = _criterion_parts(subject, criterion)
        assert parts["result"] == ["met"]
        (ref,) = [e["reference"] for e in parts["evidence"]]
        kind, rid = ref.split("/")
        confirmation = w.client.read(kind, rid)
        assert confirmation["performer"] == [{
            "identifier": {"system": "urn:trial-eligibility:user", "value": COORDINATOR[0]},
            "display": COORDINATOR[1]}]
        (prov,) = _provenance_for(w, ref)
        assert prov["agent"][0]["who"]["identifier"]["value"] == COORDINATOR[0]
        assert prov["recorded"]
        if kind == "Consent":
            assert confirmation["policy"] == [{"uri": f"urn:trial-eligibility:study:{LN}"}]

    # workflow: on study, and a re-screen keeps it
    ln.locator("select[name=status]").select_option("on-study")
    ln.get_by_role("button", name="Set status").click()
    page.wait_for_load_state()
    page.get_by_role("button", name=re.compile("Screen again")).click()
    page.wait_for_load_state()
    assert "Screened again" in page.locator(".flashes").inner_text()
    status_line = page.locator(f"#study-{LN} .status-line").inner_text()
    assert "Computed: eligible" in status_line and "Workflow: on-study" in status_line
    subject = w.subject(LN, "seed-potential")
    assert subject["status"] == "on-study" and rs.computed_status(subject) == "eligible"
    (prov,) = _provenance_for(w, f"ResearchSubject/{subject['id']}")
    assert prov["agent"][0]["who"]["identifier"]["value"] == COORDINATOR[0]
    context.close()


def test_undo_marks_the_confirmation_entered_in_error(browser, ws):
    w, url = ws
    page = _context(browser).new_page()
    _sign_in(page, url, COORDINATOR)
    page.goto(url + "/patients/seed-hb-59")
    _manual_criterion(page, SLE, "ecg")
    assert page.locator(f"#{SLE}-ecg .badge").first.inner_text() == "met"
    undo = page.get_by_role("button", name=re.compile("Undo"))
    page.locator("tr", has_text="ECG").filter(has=undo).get_by_role(
        "button", name=re.compile("Undo")).click()
    page.wait_for_load_state()
    assert page.locator(f"#{SLE}-ecg .badge").first.inner_text() == "unknown"
    (undone,) = [o for o in w.client.search("Observation", {
        "subject": "Patient/seed-hb-59", "code": "urn:trial-eligibility:criterion|ecg"})]
    assert undone["status"] == "entered-in-error"


def test_sledai_worksheet_saved_makes_sledai_met(browser, ws):
    w, url = ws
    page = _context(browser).new_page()
    _sign_in(page, url, COORDINATOR)
    page.goto(url + "/patients/seed-sledai-6")
    assert page.locator(f"#{LN}-sledai-2k .badge").first.inner_text() == "not-met"
    page.get_by_role("link", name="Open the SLEDAI-2K worksheet").first.click()
    page.wait_for_load_state()
    assert page.locator("table.sledai tbody tr").count() == 24
    _check(page, "sledai")
    for key in ("arthritis", "rash", "alopecia"):
        page.check(f"#d-{key}")
    page.get_by_role("button", name="Save the SLEDAI-2K score").click()
    page.wait_for_load_state()
    assert "SLEDAI-2K" in page.locator(".flashes").inner_text()
    for study in (LN, SLE):
        assert page.locator(f"#{study}-sledai-2k .badge").first.inner_text() == "met"
    parts = _criterion_parts(w.subject(LN, "seed-sledai-6"), "sledai-2k")
    assert parts["result"] == ["met"]
    (ref,) = [e["reference"] for e in parts["evidence"]]
    score = w.client.read(*ref.split("/"))
    assert score["valueInteger"] >= 8 and len(score["component"]) == 24
    assert score["performer"][0]["identifier"]["value"] == COORDINATOR[0]
    assert _provenance_for(w, ref)


def test_prescreening_log_and_viewer_cannot_write(browser, ws):
    w, url = ws
    page = _context(browser).new_page()
    _sign_in(page, url, VIEWER)
    page.goto(url + f"/studies/{LN}/log")
    assert "Prescreening log" in page.locator("h1").inner_text()
    assert page.locator("svg.chart").count() >= 1
    assert re.search(r"of a target of\s+50", page.locator("#h-enrol + p").inner_text())
    _check(page, "log")
    page.goto(url + "/patients/seed-potential")
    # a viewer sees no form that writes
    assert page.locator("form[action$='/confirm']").count() == 0
    assert page.locator("form[action$='/workflow']").count() == 0
    _check(page, "patient-viewer")


def test_keyboard_only_sign_in_and_confirm(browser, ws):
    _, url = ws
    page = _context(browser).new_page()
    page.goto(url + "/login")
    # the user name field has focus; Tab moves on, Enter submits
    page.wait_for_function("document.activeElement && document.activeElement.id === 'username'")
    page.keyboard.type(COORDINATOR[0])
    page.keyboard.press("Tab")
    page.keyboard.type(COORDINATOR[2])
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Worklist"
    page.goto(url + "/patients/seed-age-19")
    # record a confirmation with the keyboard alone: Tab to it, Space ticks, Enter saves
    _tab_to(page, f"#{SLE}-lung-lesions input[value=met]")
    page.keyboard.press("Space")
    _tab_to(page, f"#{SLE}-lung-lesions button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert "Recorded: Lung lesions met" in page.locator(".flashes").inner_text()
    assert page.locator(f"#{SLE}-lung-lesions .badge").first.inner_text() == "met"


@pytest.mark.security
def test_failed_sign_ins_lock_the_name_with_a_message_naming_no_account(browser, ws):
    _, url = ws
    page = _context(browser).new_page()
    for attempt in range(5):
        page.goto(url + "/login")
        page.fill("#username", "mallory")  # no such account: locked like any other
        page.fill("#password", f"guess number {attempt}")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        if attempt < 4:
            assert page.locator("[role=alert]").inner_text() == "Wrong user name or password."
            if attempt == 0:
                _check(page, "signin-failed")
    message = page.locator("[role=alert]").inner_text()
    assert message.startswith("Too many failed sign-in attempts") and "15 minutes" in message
    assert "mallory" not in message and "exist" not in message
    _check(page, "signin-locked")


def _tab_to(page: Any, selector: str, limit: int = 300) -> None:
    """Press Tab until `selector` has the focus; every control on the way shows its focus."""
    target = page.locator(selector).element_handle()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(t) => document.activeElement === t", target):
            return
        tag, outline, width, html = page.evaluate(
            "() => { const e = document.activeElement; const s = getComputedStyle(e);"
            " return [e.tagName, s.outlineStyle, s.outlineWidth, e.outerHTML.slice(0, 100)]; }")
        if tag in ("A", "BUTTON", "SELECT", "SUMMARY", "TEXTAREA") or (
                tag == "INPUT" and "date" not in html):
            assert outline != "none" and width != "0px", f"no visible focus on {html}"
    raise AssertionError(f"Tab never reached {selector}")
