"""Chromium through Playwright for the browser tests: launch, axe-core, screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a headless, quiet Chromium that never reaches out on its own (CI is offline-ish).
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
AXE = Path(__file__).resolve().parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
SIZES = ((1280, 800), (768, 1024))
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI must run the browser tests but {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


def launch() -> Iterator[Any]:
    """Yield a Playwright Chromium browser (Debian's), or skip (fail in CI) saying why."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (./dev setup installs it)")
    if not Path(CHROMIUM).exists():
        _unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    if not AXE.exists():
        _unavailable(f"axe-core is missing: npm ci --prefix {AXE.parents[2]}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page (axe injected by the test)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result if v.get("impact") in ("serious", "critical")
    ]


def screenshot(page: Any, name: str) -> list[Path]:
    """Full-page screenshots of the current page at each size under var/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    saved = []
    original = page.viewport_size
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        path = SCREENSHOTS / f"{name}-{width}x{height}.png"
        page.screenshot(path=str(path), full_page=True)
        saved.append(path)
    if original:
        page.set_viewport_size(original)
    return saved
