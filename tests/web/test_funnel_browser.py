"""The coordinator's funnel in a real browser (Chromium via Playwright) on the seeds.

A coordinator records a 2019 EULAR/ACR classification, withdraws a patient with a reason,
reads the funnel, and is told of a new candidate by email; every step is checked on the page
AND where it is kept (the FHIR server, the mailbox). Each page is checked with axe-core and
saved as screenshots under var/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from localfhir import start_local_server
from service.fhir import research_subject as rs
from tests.support.browser import launch, screenshot, serious_violations
from tests.support.live_app import serve
from tests.support.workspace import COORDINATOR, Workspace, workspace

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]
LN = "pediatric-ln-cart"
SLE = "refractory-sle-cart"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str]]:
    server = start_local_server()
    try:
        with workspace(server.base_url, tmp_path_factory.mktemp("funnel")) as w, \
                serve(w.app) as url:
            yield w, url
    finally:
        server.stop()


def _page(browser: Any, url: str) -> Any:
    # bypass_csp lets the test inject axe-core; the pages themselves run no script.
    page = browser.new_context(viewport={"width": 1280, "height": 800},
                               bypass_csp=True).new_page()
    page.goto(url + "/login")
    page.fill("#username", COORDINATOR[0])
    page.fill("#password", COORDINATOR[2])
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def _check(page: Any, name: str) -> None:
    assert serious_violations(page) == [], f"axe-core on {name}"
    screenshot(page, name)


def _criterion(subject: dict, cid: str) -> dict[str, list]:
    for ext in subject["extension"]:
        if ext["url"] != rs.CRITERION_EXTENSION:
            continue
        parts: dict[str, list] = {}
        for p in ext["extension"]:
            parts.setdefault(p["url"], []).append(next(v for k, v in p.items() if k != "url"))
        if parts["id"] == [cid]:
            return parts
    raise AssertionError(cid)


def test_a_saved_classification_worksheet_changes_sle_diagnosis(browser, ws):
    w, url = ws
    page = _page(browser, url)
    page.goto(url + "/patients/seed-ana-low")
    badge = page.locator(f"#{SLE}-sle-diagnosis .badge").first
    assert badge.inner_text() == "met"  # the coded SLE diagnosis, no classification yet
    assert "no 2019 EULAR/ACR classification is recorded" in page.locator(
        f"#{SLE}-sle-diagnosis .reason").inner_text()
    page.locator(f"#{SLE}-sle-diagnosis").get_by_role(
        "link", name="Open the 2019 EULAR/ACR classification worksheet").click()
    page.wait_for_load_state()
    assert page.url.endswith("/patients/seed-ana-low/classification")
    # ANA 1:40 only: entry unticked; class III/IV nephritis and proteinuria pre-ticked
    assert not page.is_checked("#entry")
    assert page.is_checked("#i-renal-biopsy-class-iii-or-iv") and page.is_checked(
        "#i-proteinuria")
    assert page.locator("table.classification tbody tr.domain").count() == 10
    _check(page, "classification")
    page.check("#i-joint-involvement")
    page.get_by_role("button", name="Save the classification").click()
    page.wait_for_load_state()
    flash = page.locator(".flashes").inner_text()
    assert "16 points, not classified as SLE" in flash
    for study in (SLE, LN):
        item = page.locator(f"#{study}-sle-diagnosis")
        assert item.locator(".badge").first.inner_text() == "not-met"
        assert "entry criterion (ANA >= 1:80) is not met" in item.locator(".reason").inner_text()
    _check(page, "classification-saved")
    # ... and on the FHIR server: the ResearchSubject cites the recorded Observation
    parts = _criterion(w.subject(SLE, "seed-ana-low"), "sle-diagnosis")
    assert parts["result"] == ["not-met"]
    (ref,) = [e["reference"] for e in parts["evidence"]]
    recorded = w.client.read(*ref.split("/"))
    assert recorded["code"]["coding"][0]["code"] == "eular-acr-2019"
    assert recorded["valueInteger"] == 16
    assert recorded["performer"][0]["identifier"]["value"] == COORDINATOR[0]
