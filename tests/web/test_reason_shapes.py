"""Every sentence shape the engine writes has a Chinese template (pages/reason_templates.py).

The engine's own tests build thousands of reasons over records of every shape; a plugin
(tests/support/reason_collector.py) keeps each reason service code builds while they run in a
subprocess, and every one must translate. A new sentence shape in a rule fails here until its
template, `./dev messages` and its Chinese are added (docs/translations.md).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask

from service.engine.labs import label
from service.mappings.loader import load_mappings

REPO = Path(__file__).resolve().parents[2]
SEED_AND_EXAMPLES = f"{REPO / 'mappings'}:{REPO / 'mappings' / 'examples'}"
# Property-based engine tests invent random units and names each run: left out, so that this
# test fails for a new sentence shape, never for a random string.
RANDOM = ("tests/engine/test_properties.py", "tests/engine/test_bad_input.py")


def _chinese_app() -> Flask:
    from tests.web.test_languages import _bare_app

    return _bare_app()


def _engine_reasons(tmp_path: Path) -> list[str]:
    out = tmp_path / "reasons.json"
    env = {**os.environ, "REASON_COLLECTOR_OUT": str(out)}
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "tests.support.reason_collector", "tests/engine",
         *(f"--ignore={path}" for path in RANDOM)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    reasons: list[str] = json.loads(out.read_text())
    return reasons


@pytest.mark.slow
def test_every_reason_the_engine_tests_build_shows_in_chinese(tmp_path):
    from service.web.pages import reason_text, wording

    reasons = _engine_reasons(tmp_path)
    assert len(reasons) > 1500  # the engine tests ran and the plugin saw their reasons
    untranslated = []
    with _chinese_app().test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        words = wording.reason_words()
        for reason in reasons:
            try:
                shown = reason_text.translate(reason, words)
            except reason_text.Untranslated:
                untranslated.append(reason)
                continue
            assert re.search(r"[\u4e00-\u9fff]", shown) and "%(" not in shown, reason
    # A reason here has a sentence shape no template of pages/reason_templates.py fits: add
    # one, run ./dev messages and give it its Chinese (docs/translations.md).
    assert untranslated == []


def test_every_concept_and_wording_of_the_seed_and_example_mappings_is_a_term():
    from service.web.pages import reason_text

    mappings = load_mappings(SEED_AND_EXAMPLES)
    names = {label(concept) for concept in mappings.concepts.values()}
    wordings = {said for study in mappings.studies.values() for crit in _all(study.criteria)
                for said in crit.wording.values()}
    unknown = sorted(n for n in names | wordings if not reason_text.is_term(n))
    # Add each to TERMS (pages/reason_templates.py), run ./dev messages, translate it.
    assert unknown == []
    assert len(names) > 50


def _all(criteria):  # a combination's parts too
    for crit in criteria:
        yield crit
        yield from _all(crit.params.get("of", ()))


def test_a_name_the_catalogue_does_not_know_keeps_the_sentence_chinese():
    from service.web.pages import reason_text, wording

    with _chinese_app().test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        words = wording.reason_words()
        shown = reason_text.translate(
            "No course of hospital-brand MMF at >= 1500 mg/day for 90 days in the 365 days before "
            "2026-11-15: the longest such course is 61 days, 90 needed.", words)
        assert shown == ("2026年11月15日 前 365 天内无 hospital-brand MMF ≥1500 mg/day 持续 90 天的"
                         "疗程：最长的此类疗程为 61 天，需要 90 天。")
        with pytest.raises(reason_text.Untranslated):  # a shape no template fits stays English
            reason_text.translate("Hospital-brand MMF was crushed into applesauce on 2026-11-15.",
                                  words)
