"""Issue 22 in Chromium, where a coordinator sees it: the hospital's own consent is read-only
(no Undo), and a stale workflow form says who changed what and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from localfhir import start_local_server
from tests.support.browser import launch
from tests.support.live_app import serve
from tests.support.workspace import COORDINATOR, Workspace, workspace

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow,
              pytest.mark.security]
LN = "pediatric-ln-cart"
SECOND = ("sam", "Sam Second", "a second coordinator's passphrase")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str]]:
    server = start_local_server()
    try:
        with workspace(server.base_url, tmp_path_factory.mktemp("pages-sec-browser")) as w, \
                serve(w.app) as url:
            w.accounts.add(SECOND[0], "coordinator", SECOND[2], display=SECOND[1])
            yield w, url
    finally:
        server.stop()


def _signed_in(browser: Any, url: str, account: tuple[str, str, str]) -> Any:
    page = browser.new_context().new_page()
    page.goto(url + "/login")
    page.fill("#username", account[0])
    page.fill("#password", account[2])
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def test_the_hospitals_consent_shows_read_only_without_undo(browser, ws):
    w, url = ws
    pid = "seed-potential"
    w.client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {
            "resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "treatment"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{pid}"}, "dateTime": "2026-10-01",
            "policy": [{"uri": "https://hospital.example/policies/treatment"}],
        },
        "request": {"method": "POST", "url": "Consent"}}]})
    page = _signed_in(browser, url, COORDINATOR)
    page.goto(f"{url}/patients/{pid}")
    row = page.locator("tr", has_text="2026-10-01")
    assert row.count() == 1
    assert "hospital record (read-only)" in row.inner_text()
    assert row.get_by_role("button", name="Undo").count() == 0
    page.context.close()


def test_a_stale_workflow_form_shows_who_changed_what_and_changes_nothing(browser, ws):
    w, url = ws
    pid = "seed-ln-eligible"
    first = _signed_in(browser, url, COORDINATOR)
    first.goto(f"{url}/patients/{pid}")
    second = _signed_in(browser, url, SECOND)
    second.goto(f"{url}/patients/{pid}")
    form = second.locator(f"#study-{LN} form.workflow")
    form.locator("select[name=status]").select_option("screening")
    form.locator("button[type=submit]").click()
    second.wait_for_load_state()
    assert w.subject(LN, pid)["status"] == "screening"
    version = w.subject(LN, pid)["meta"]["versionId"]
    # The first coordinator's page is from before: their choice is refused with the facts.
    form = first.locator(f"#study-{LN} form.workflow")
    form.locator("select[name=status]").select_option("on-study")
    form.locator("button[type=submit]").click()
    first.wait_for_load_state()
    assert first.locator("h1").inner_text() == "The record changed meanwhile"
    text = first.locator("main").inner_text()
    assert "Nothing was changed" in text and SECOND[1] in text and "screening" in text
    assert w.subject(LN, pid)["meta"]["versionId"] == version
    assert w.subject(LN, pid)["status"] == "screening"
