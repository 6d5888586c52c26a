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
         "tests.support.reason_collector", "tests/engine", "tests/mappings",
         *(f"--ignore={path}" for path in RANDOM)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    reasons: list[str] = json.loads(out.read_text())
    return reasons


# Shapes the engine writes that its tests do not reach (variants read from the rules: no
# window, undated, the other comparison words), one sentence each as the rule writes it.
EXAMPLES = (
    "Age 30 years on 2026-11-15 is outside the required at most 18 years.",
    "Not classified as SLE by the 2019 EULAR/ACR criteria recorded on 2026-11-10: 8 points, "
    "below 10; the laboratory and biopsy items alone reach 0 of the 10 2019 EULAR/ACR points "
    "(entry criterion ANA >= 1:80 not shown).",
    "The 2019 EULAR/ACR classification recorded on 2026-11-10 (Observation/x) has no readable "
    "total or entry criterion; record it again with the worksheet; the laboratory and biopsy "
    "items alone reach 3 of the 10 2019 EULAR/ACR points (entry criterion ANA >= 1:80 met): "
    "Low C3 or low C4 3.",
    "Excluded: deceased (the date of death cannot be read).",
    "Excluded: deceased on 2026-03.",
    "The birth date is after the screening date.",
    "The latest pregnancy test has no readable result.",
    "ANA reported negative on 2026-11-01, without the screening dilution; 1:80 cannot be judged.",
    "ALT 30 U/L on 2026-11-01 has no upper limit of normal: no reference range on the result and "
    "the birth date is too partial for the age/sex table.",
    "ALT 30 U/L on 2026-11-01 has no ULN: the age/sex table's unit mg/dL cannot be converted to "
    "U/L.",
    "C4 30 mg/dL on 2026-11-14 (LLN 10 mg/dL from reference range of Observation/o1) is at least "
    "LLN.",
    "C4 30 mg/dL on 2026-11-14 (LLN 10 mg/dL from reference range of Observation/o1) is above "
    "LLN.",
    "ALT 30 U/L on 2026-11-14 (ULN 40 U/L from reference range of Observation/o1) is at most "
    "ULN.",
    "ALT 30 U/L on 2026-11-14 (ULN 40 U/L from reference range of Observation/o1) is not above "
    "2 x ULN.",
    "ALT 90 U/L on 2026-11-14 (ULN 40 U/L from reference range of Observation/o1) is at most "
    "3 x ULN (limit for Gilbert syndrome).",
    "ALT 190 U/L on 2026-11-14 (ULN 40 U/L from reference range of Observation/o1) is above "
    "3 x ULN (limit for Gilbert syndrome).",
    "No usable AST value (result without a number).",
    "The SLEDAI-2K score of 2026-11-10 has no number.",
    "SLEDAI-2K score 10 on 2026-11-10 is 6 without alopecia, mucosal-ulcers, at most 8.",
    "SLEDAI-2K score 10 on 2026-11-10 is 6 without alopecia, mucosal-ulcers, above 4.",
    "SLEDAI-2K score 10 on 2026-11-10 is 6 without alopecia, mucosal-ulcers, not above 8.",
    "SLEDAI-2K score 10 on 2026-11-10 is 2 without alopecia, mucosal-ulcers, not below 4.",
    "SLEDAI-2K score 2 on 2026-11-10 is already at most 4 before alopecia, fever are taken off.",
    "SLEDAI-2K score 2 on 2026-11-10 is already not above 4 before alopecia, fever are taken "
    "off.",
    "SLEDAI-2K score 10 on 2026-11-10 does not record the points of alopecia, fever item by "
    "item; score it on the worksheet or confirm it.",
    "Thromboembolic event recorded on 2026-11-05 (Condition/c1).",
    "Excluded: kidney transplant recorded (undated) (Condition/c1) in the 730 days before "
    "2026-11-15.",
    "Plasmapheresis performed (undated) (Procedure/p1).",
    "Plasmapheresis performed (undated) (Procedure/p1) in the 90 days before 2026-11-15.",
    "Live vaccine given on 2026-11-01 (Immunization/i1).",
    "Live vaccine given (undated) (Immunization/i1).",
    "Live vaccine given (undated) (Immunization/i1) in the 28 days before 2026-11-15.",
    "Rituximab taken on 2026-05-19 (MedicationStatement/m1).",
    "Rituximab taken (undated) (MedicationStatement/m1).",
    "Rituximab taken (undated) (MedicationStatement/m1) in the 180 days before 2026-11-15.",
    "Rituximab is recorded (MedicationStatement/m1), but its date does not show whether it "
    "falls.",
    "No rituximab is recorded (the latest, MedicationStatement/m1, is older).",
    "Levetiracetam was given for non-malignant CNS disease (MedicationStatement/m1).",
    "Levetiracetam was given for non-malignant CNS disease (MedicationStatement/m1) in the 730 "
    "days before 2026-11-15.",
    "A medication was given for non-malignant CNS disease (MedicationStatement/m1).",
    "A medication for non-malignant CNS disease is recorded (MedicationStatement/m1), but its "
    "dates do not show whether it was taken.",
    "A medication for non-malignant CNS disease is recorded (MedicationStatement/m1), but its "
    "dates do not show whether it was taken in the 730 days before 2026-11-15.",
    "No medication recorded as given for non-malignant CNS disease.",
    "SLE is recorded but not active (Condition/c1); only an active diagnosis counts here.",
    "Only drug-induced lupus is recorded, which does not count as lupus nephritis.",
    "mycophenolate mofetil at >= 1500 mg/day for 95 days.",
    "No course of azathioprine at >= 1.5 mg/kg/day for 90 days: the longest such course is 0 "
    "days, 90 needed.",
    "Medication history is partial (no prednisone equivalent for MedicationStatement/ms-1; "
    "period of MedicationStatement/ms-2 unknown); the longest such course is 0 days, 90 needed.",
    "No eGFR on record under the codes searched (LOINC 33914-3), and bedside Schwartz cannot be "
    "computed: creatinine <0.2 mg/dL is not an exact positive value.",
    "Informed consent for this study is recorded as active.",
    "A research consent naming no particular study is active; check that it covers this study.",
    "The latest consent for this study is without a status; an active, signed consent is "
    "needed. Record it with the confirmation form on the patient page once it is signed.",
    "The record's data for this criterion is malformed and could not be read; review it by hand.",
    "anti-dsDNA negative on 2026-11-14",
    "C3 flagged low on 2026-11-14",
    "no ANA titre of 1:80 or more (latest unreadable on 2026-11-05)",
)


def _translated(reasons, monkeypatch) -> tuple[list[str], set[str]]:
    """The reasons no template fits, and every template (msgid) the others used."""
    from service.web.pages import reason_text, wording

    used: set[str] = set()
    original = reason_text.gettext

    def recording(msgid, **kwargs):
        used.add(msgid)
        return original(msgid, **kwargs)

    monkeypatch.setattr(reason_text, "gettext", recording)
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
    return untranslated, used


@pytest.mark.slow
def test_every_reason_the_engine_tests_build_shows_in_chinese(tmp_path, monkeypatch):
    from service.web.pages.reason_templates import TEMPLATES

    reasons = _engine_reasons(tmp_path)
    assert len(reasons) > 2000  # the engine tests ran and the plugin saw their reasons
    untranslated, used = _translated([*reasons, *EXAMPLES], monkeypatch)
    # A reason here has a sentence shape no template of pages/reason_templates.py fits: add
    # one, run ./dev messages and give it its Chinese (docs/translations.md).
    assert untranslated == []
    # A template nothing uses is a shape the engine no longer writes (or a typo): remove it, or
    # add the sentence the rule writes to EXAMPLES.
    assert sorted(set(TEMPLATES) - used) == []


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


def test_a_part_of_a_combination_is_named_by_its_text_zh(monkeypatch):
    from types import SimpleNamespace

    from service.web.pages import reason_text, wording

    part = SimpleNamespace(text="ANA titer at least 1:80", text_zh="ANA 滴度 ≥1:80", params={})
    whole = SimpleNamespace(text="Serology", text_zh="血清学", params={"of": (part,)})
    monkeypatch.setattr(wording, "_studies", lambda: {"s": SimpleNamespace(criteria=(whole,))})
    with _chinese_app().test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        shown = reason_text.translate("Met by ANA titer at least 1:80: ANA titer 1:160 on "
                                      "2026-10-26 is at least 1:80.", wording.reason_words())
    assert shown == "满足的部分：ANA 滴度 ≥1:80：ANA 滴度 1:160（2026年10月26日），不低于 1:80。"
