"""The documentation site stays true to the code: every setting has its row, every page is
in the navigation."""

from __future__ import annotations

import re
from typing import Any

from service.core.settings import REPO_ROOT, Settings

DOCS = REPO_ROOT / "docs"


class _Recording(dict[str, str]):
    """An empty environment that remembers every variable asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def _setting_names() -> set[str]:
    """Every environment variable Settings.from_env reads."""
    env = _Recording()
    Settings.from_env(env)
    return env.asked


def _documented_names() -> set[str]:
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_every_setting_is_documented():
    names = _setting_names()
    assert len(names) > 40  # the pattern still finds the settings
    assert not names - _documented_names(), sorted(names - _documented_names())


def test_every_documented_setting_exists():
    # The page's first tables are Settings; the last one ("Outside Settings") names who reads
    # each of its variables instead.
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    inside = page.split("## Outside `Settings`")[0]
    rows = [line for line in inside.splitlines() if line.startswith("| `")]
    documented = {n for row in rows for n in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}
    assert not documented - _setting_names(), sorted(documented - _setting_names())


def test_every_page_is_in_the_navigation():
    nav = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    missing = sorted(p for p in pages if p not in nav)
    assert pages and not missing, missing
