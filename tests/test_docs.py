"""The documentation site stays true to the code: every setting has its row, every page is in
the navigation, every criterion is listed, and nothing cites a file outside the repository."""

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


def test_the_decisions_page_lists_every_criterion_of_each_study_in_order():
    from service.mappings import load_mappings

    page = (DOCS / "decisions.md").read_text(encoding="utf-8")
    studies = load_mappings(REPO_ROOT / "mappings").studies
    for key in ("refractory-sle-cart", "pediatric-ln-cart"):
        section = page.split(f"### {key}\n", 1)[1].split("\n#", 1)[0]
        listed = re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.M)
        assert listed == [c.id for c in studies[key].criteria], key


# A spec file the project was written from, or the shared folder beside the repository.
CITATION = re.compile(r"(?<![\w/.-])(?:criteria|api|terminology|conformance-study)\.md\b"
                      r"|shared/(?:spec|seeds|fhir-corpus)")


def test_nothing_cites_a_file_outside_the_repository():
    # Comments, docstrings, mappings and pages cite the documentation (docs/decisions.md ...),
    # which is in the repository, never the specification beside it.
    roots = [REPO_ROOT / "service", REPO_ROOT / "mappings", DOCS]
    files = [f for root in roots for f in root.rglob("*")
             if f.suffix in (".py", ".toml", ".md", ".html", ".json", ".csv") and f.is_file()]
    files += [REPO_ROOT / name for name in ("README.md", "SECURITY.md", "Dockerfile",
                                            "docker-compose.yml", "mkdocs.yml")]
    cited = [f"{f.relative_to(REPO_ROOT)}:{n}" for f in files
             for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
             if CITATION.search(line)]
    assert len(files) > 50
    assert not cited, cited


def test_every_import_contract_is_on_the_architecture_page():
    import tomllib

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    names = [c["name"] for c in config["tool"]["importlinter"]["contracts"]]
    page = (DOCS / "architecture.md").read_text(encoding="utf-8")
    assert names and not [n for n in names if n not in page], [n for n in names if n not in page]
