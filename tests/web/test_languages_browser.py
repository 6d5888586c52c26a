"""Every page in English and Simplified Chinese in a real browser (Chromium via Playwright).

A coordinator signs in with the browser asking for English, switches to 中文 with the header's
own form (no JavaScript), and reads every page: `<html lang>` follows, the page shows no
English of the catalogue, axe-core finds nothing serious. Screenshots of every page in both
languages are saved under var/screenshots/ as en-<page> and zh-<page>.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from localfhir import start_local_server
from tests.support.browser import launch, screenshot, serious_violations
from tests.support.live_app import serve
from tests.support.workspace import COORDINATOR, Workspace, workspace
from tests.web.test_languages import english_left, visible_text

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]
LN = "pediatric-ln-cart"
SLE = "refractory-sle-cart"
PAGES = (
    ("worklist", "/"),
    ("worklist-sle", f"/?study={SLE}"),
    ("patient", "/patients/seed-potential"),
    ("patient-ineligible", "/patients/seed-hb-59"),
    ("sledai", "/patients/seed-sledai-6/sledai"),
    ("classification", "/patients/seed-potential/classification"),
    ("log", f"/studies/{LN}/log"),
    ("notifications", "/notifications"),
    ("not-found", "/patients/no-such-patient"),
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str]]:
    server = start_local_server()
    try:
        with workspace(server.base_url, tmp_path_factory.mktemp("languages")) as w, \
                serve(w.app) as url:
            yield w, url
    finally:
        server.stop()


def _read(page: Any, url: str, path: str) -> str:
    page.goto(url + path)
    page.wait_for_load_state()
    return page.content()


def test_every_page_in_english_then_in_chinese_after_the_switch(browser, ws):
    w, url = ws
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True,
                                  locale="en-US")
    page = context.new_page()
    page.goto(url + "/login")
    screenshot(page, "en-login")
    page.fill("#username", COORDINATOR[0])
    page.fill("#password", COORDINATOR[2])
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    for name, path in PAGES:
        html = _read(page, url, path)
        assert page.locator("html").get_attribute("lang") == "en", name
        assert not re.search(r"[\u4e00-\u9fff]", visible_text(html).replace("中文", "")), name
        screenshot(page, f"en-{name}")

    page.goto(url + "/patients/seed-potential")
    page.locator("form.language button[value=zh_CN]").click()
    page.wait_for_load_state()
    assert page.url.endswith("/patients/seed-potential")  # the switch returns to the page
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert w.accounts.language(COORDINATOR[0]) == "zh_CN"
    for name, path in PAGES:
        html = _read(page, url, path)
        assert page.locator("html").get_attribute("lang") == "zh-CN", name
        assert english_left(visible_text(html)) == [], name
        assert serious_violations(page) == [], f"axe-core on zh-{name}"
        screenshot(page, f"zh-{name}")
    worklist = _read(page, url, "/")
    assert "工作列表" in worklist and "潜在候选者" in worklist

    page.locator("header form[action$='/logout'] button").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "zh-CN"  # stays after signing out
    assert "您已退出登录" in page.locator(".flashes").inner_text()
    screenshot(page, "zh-login")
    context.close()
