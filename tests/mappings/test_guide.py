"""The "Writing a study" page (docs/writing-a-study.md) stays true: every rule listed exists,
its example is the shipped mapping."""

from __future__ import annotations

import re

from service.core.settings import REPO_ROOT
from service.engine.rules import RULES


def _guide() -> str:
    return (REPO_ROOT / "docs" / "writing-a-study.md").read_text(encoding="utf-8")


def test_every_rule_in_the_guide_table_exists():
    # A new rule needs no edit of the page (one engine file and one test file); the registry, with
    # each rule's docstring, is the reference. What the guide names must exist, though.
    listed = set(re.findall(r"^\| ([^|]+) \|", _guide(), re.M)) - {"rule", "---"}
    names = {name for row in listed for name in re.findall(r"`([a-z0-9-]+)`", row)}
    assert names and names <= set(RULES), sorted(names - set(RULES))


def test_every_rule_says_when_it_is_met():
    assert not [name for name, spec in RULES.items() if not spec.doc]


def test_the_guide_example_is_the_shipped_conformance_mapping():
    mapping = (REPO_ROOT / "mappings" / "conformance" / "lupus-conformance.toml").read_text()
    for line in ('id = "hbv-active"', 'rule = "coded-result"', 'concepts = ["hbsag"]',
                 'answer = "positive"', "lookback_days = 365"):
        assert line in mapping and line in _guide()
