"""Manual parts and manual exclusions on the patient page, in Chromium (Playwright).

With the example trials loaded (MAPPINGS_DIR=mappings:mappings/examples), the page offers a
form for every manual part of a combination, and a manual exclusion's form asks whether the
condition is present; what is recorded is checked in the FHIR record and in the result.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from localfhir import start_local_server
from service.core.settings import REPO_ROOT
from tests.support.browser import launch
from tests.support.live_app import serve
from tests.support.workspace import COORDINATOR, Workspace, workspace

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]
PID = "seed-potential"
AUTOGRAPH, FT819 = "autograph", "ft819-sle"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str]]:
    server = start_local_server()
    dirs = f"{REPO_ROOT / 'mappings'}:{REPO_ROOT / 'mappings' / 'examples'}"
    try:
        with workspace(server.base_url, tmp_path_factory.mktemp("parts"),
                       mappings_dir=dirs) as w, serve(w.app) as url:
            yield w, url
    finally:
        server.stop()


def _signed_in_page(browser: Any, url: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(url + "/login")
    page.fill("#username", COORDINATOR[0])
    page.fill("#password", COORDINATOR[2])
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{url}/patients/{PID}")
    return page


def _confirmations(w: Workspace, code: str) -> list[dict[str, Any]]:
    return [r for r in w.client.search("Observation", {
        "subject": f"Patient/{PID}", "code": f"urn:trial-eligibility:criterion|{code}"})
        if r.get("resourceType") == "Observation"]


def test_every_manual_part_has_a_form(browser, ws):
    _, url = ws
    page = _signed_in_page(browser, url)
    forms = page.locator(f"#{FT819}-disease-activity form")
    assert forms.locator("input[name=criterion]").evaluate_all(
        "els => els.map(e => e.value)") == ["bilag-a"]
    cns = page.locator(f"#{FT819}-cns-disease input[name=criterion]")
    assert cns.evaluate_all("els => els.map(e => e.value)") == ["cns-medication"]
    # A part of an exclusion is asked as present / absent too.
    assert page.locator(f"#{FT819}-cns-disease input[name=answer][value=present]").count() == 1
    # Reported as needing a person, not as automatic.
    assert "confirmed by a person" in page.locator(f"#{FT819}-disease-activity").inner_text()


def test_a_manual_part_is_recorded_for_its_study(browser, ws):
    w, url = ws
    page = _signed_in_page(browser, url)
    item = page.locator(f"#{FT819}-disease-activity")
    form = item.locator("form", has=page.locator("input[name=criterion][value=bilag-a]"))
    form.locator("input[name=answer][value=met]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "Recorded:" in page.locator(".flashes").inner_text()
    (written,) = _confirmations(w, "bilag-a")
    assert written["valueBoolean"] is True
    # Scoped to its study: the confirmation names the FT819 ResearchStudy.
    (focus,) = written["focus"]
    assert focus["reference"] == w.app.extensions["eligibility"].screener \
        .research_study_refs()[FT819]


def test_a_manual_exclusion_asks_whether_the_condition_is_present(browser, ws):
    w, url = ws
    page = _signed_in_page(browser, url)
    item = page.locator(f"#{AUTOGRAPH}-acute-flare")
    legend = item.locator("legend").inner_text()
    assert legend.startswith("Is this present?") and "Acute flare" in legend
    assert item.locator("input[name=answer][value=met]").count() == 0
    item.locator("input[name=answer][value=present]").check()
    item.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "present" in page.locator(".flashes").inner_text()
    # Stored the right way round: present is `true`, and it excludes.
    (written,) = _confirmations(w, "acute-flare")
    assert written["valueBoolean"] is True
    badge = page.locator(f"#{AUTOGRAPH}-acute-flare .badge").first.inner_text()
    assert badge == "not-met"
    assert "Excluded" in page.locator(f"#{AUTOGRAPH}-acute-flare .reason").inner_text()
