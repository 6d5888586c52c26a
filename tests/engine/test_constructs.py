"""The general constructs at their boundaries: combinators in three-valued logic, exclusions,
applicability by sex and age, per-criterion wording, and what the loader refuses in them."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.core.settings import REPO_ROOT
from service.engine.evaluate import evaluate_patient
from service.engine.results import CriterionResult
from service.mappings import MappingError, load_mappings
from tests.support.builders import AS_OF, HB, PID, SPO2, birth_for, obs, patient, sledai

HEADER = ('[study]\nkey = "constructs"\ntitle = "Constructs under test"\n'
          'diagnosis_criteria = []\n')
PARTS = {
    "sledai": ('text = "SLEDAI-2K at least 8"\nrule = "threshold"\nconcept = "sledai-2k"\n'
               'operator = ">="\nthreshold = "8"\n'),
    "hb": ('text = "haemoglobin at least 60 g/L"\nrule = "threshold"\nconcept = "hemoglobin"\n'
           'operator = ">="\nthreshold = "60"\n'),
    "spo2": ('text = "SpO2 at least 92%"\nrule = "threshold"\nconcept = "spo2"\n'
             'operator = ">="\nthreshold = "92"\n'),
}
# Records that make each part met, not-met or unknown (absent).
VALUES: dict[str, dict[str, Callable[[], list[dict[str, Any]]]]] = {
    "sledai": {"met": lambda: [sledai(10)], "not-met": lambda: [sledai(5)],
               "unknown": lambda: []},
    "hb": {"met": lambda: [obs(HB, 100, "g/L")], "not-met": lambda: [obs(HB, 50, "g/L")],
           "unknown": lambda: []},
    "spo2": {"met": lambda: [obs(SPO2, 95, "%")], "not-met": lambda: [obs(SPO2, 80, "%")],
             "unknown": lambda: []},
}


def study_dir(tmp_path: Path, body: str) -> str:
    """A mappings folder holding one study file; loaded together with the repository's."""
    folder = tmp_path / "extra"
    folder.mkdir(exist_ok=True)
    (folder / "constructs.toml").write_text(HEADER + body)
    return f"{REPO_ROOT / 'mappings'}:{folder}"


def combined(rule: str, names: list[str], extra: str = "", *, cid: str = "combined",
             indent: str = "") -> str:
    parts = "".join(f"\n{indent}[[criteria.of]]\n" + PARTS[n] for n in names)
    return f'\n[[criteria]]\nid = "{cid}"\ntext = "{rule} of the parts"\nrule = "{rule}"\n' \
           f"{extra}{parts}"


def decide(dirs: str, resources: list[dict[str, Any]], cid: str = "combined",
           gender: str | None = "female", birth: str | None = None) -> CriterionResult:
    mappings = load_mappings(dirs)
    record = [patient(birth or birth_for(30), gender), *resources]
    evaluation = evaluate_patient(record, mappings, AS_OF, ["constructs"], strict=True)
    [found] = [c for c in evaluation.studies[0].criteria if c.id == cid]
    return found


def _any(results: tuple[str, ...]) -> str:
    if "met" in results:
        return "met"
    return "not-met" if all(r == "not-met" for r in results) else "unknown"


def _all(results: tuple[str, ...]) -> str:
    if "not-met" in results:
        return "not-met"
    return "met" if all(r == "met" for r in results) else "unknown"


def _at_least(count: int) -> Callable[[tuple[str, ...]], str]:
    def decide(results: tuple[str, ...]) -> str:
        met, unknown = results.count("met"), results.count("unknown")
        return "met" if met >= count else "unknown" if met + unknown >= count else "not-met"
    return decide


TABLE = list(itertools.product(("met", "not-met", "unknown"), repeat=3))


@pytest.mark.parametrize(("rule", "extra", "truth"), [
    ("any-of", "", _any), ("all-of", "", _all),
    ("at-least", "count = 2\n", _at_least(2)), ("at-least", "count = 3\n", _at_least(3)),
])
def test_combinators_follow_three_valued_logic(tmp_path, rule, extra, truth):
    dirs = study_dir(tmp_path, combined(rule, list(PARTS), extra))
    mappings = load_mappings(dirs)
    for results in TABLE:
        resources = [r for name, res in zip(PARTS, results, strict=True)
                     for r in VALUES[name][res]()]
        record = [patient(birth_for(30)), *resources]
        [study] = evaluate_patient(record, mappings, AS_OF, ["constructs"], strict=True).studies
        assert study.criteria[0].result == truth(results), (rule, results)


@pytest.mark.parametrize(("part", "expected"), [
    ("met", "not-met"), ("not-met", "met"), ("unknown", "unknown"),
])
def test_not_turns_met_and_not_met_around_and_keeps_unknown(tmp_path, part, expected):
    dirs = study_dir(tmp_path, combined("not", ["sledai"]))
    assert decide(dirs, VALUES["sledai"][part]()).result == expected


def test_the_reason_names_the_part_that_decided(tmp_path):
    dirs = study_dir(tmp_path, combined("any-of", list(PARTS)))
    found = decide(dirs, [sledai(5), obs(HB, 100, "g/L"), obs(SPO2, 80, "%")])
    assert found.result == "met"
    assert found.reason.startswith("Met by haemoglobin at least 60 g/L: ")
    assert found.evidence == (found.evidence[0],) and found.value is not None
    dirs = study_dir(tmp_path, combined("all-of", list(PARTS)))
    found = decide(dirs, [sledai(10), obs(HB, 100, "g/L"), obs(SPO2, 80, "%")])
    assert found.result == "not-met"
    assert found.reason.startswith("Not met because of SpO2 at least 92%: ")
    assert "SLEDAI" not in found.reason


def test_combinators_nest(tmp_path):
    # any-of( SLEDAI, all-of( haemoglobin, SpO2 ) )
    inner = ('\n[[criteria.of]]\ntext = "blood and oxygen"\nrule = "all-of"\n'
             '\n[[criteria.of.of]]\n' + PARTS["hb"] + '\n[[criteria.of.of]]\n' + PARTS["spo2"])
    body = ('\n[[criteria]]\nid = "combined"\ntext = "nested"\nrule = "any-of"\n'
            '\n[[criteria.of]]\n' + PARTS["sledai"] + inner)
    dirs = study_dir(tmp_path, body)
    assert decide(dirs, [sledai(5), obs(HB, 100, "g/L"), obs(SPO2, 95, "%")]).result == "met"
    assert decide(dirs, [sledai(5), obs(HB, 100, "g/L"), obs(SPO2, 80, "%")]).result \
        == "not-met"
    assert decide(dirs, [sledai(5), obs(HB, 100, "g/L")]).result == "unknown"
    found = decide(dirs, [sledai(5), obs(HB, 100, "g/L"), obs(SPO2, 95, "%")])
    assert "blood and oxygen" in found.reason


# Each combinator's own words, the value it passes on and how much evidence, for each outcome.
# The codes a "no ... on record" reason lists depend on the mappings: left out of the comparison.
COMBINED = [
    ('any-of-met', 'met',
     'Met by SLEDAI-2K at least 8: SLEDAI-2K score 10 on 2026-11-14 is at least 8.',
     {'value': 10, 'unit': '1'}, 1),
    ('any-of-not-met', 'not-met',
     'None of the parts is met: SLEDAI-2K at least 8: SLEDAI-2K score 5 on 2026-11-14 is below '
     '8; haemoglobin at least 60 g/L: Haemoglobin 50 g/L on 2026-11-14 is below 60 g/L.',
     None, 2),
    ('any-of-unknown', 'unknown',
     'No part is met yet, and these cannot be decided: haemoglobin at least 60 g/L: No '
     'haemoglobin on record; SpO2 at least 92%: No SpO2 on record.',
     None, 0),
    ('all-of-met', 'met',
     'Every part is met: SLEDAI-2K at least 8: SLEDAI-2K score 10 on 2026-11-14 is at least 8; '
     'haemoglobin at least 60 g/L: Haemoglobin 100 g/L on 2026-11-14 is at least 60 g/L.',
     None, 2),
    ('all-of-unknown', 'unknown',
     'Not every part can be decided: haemoglobin at least 60 g/L: No haemoglobin on record.',
     None, 0),
    ('all-of-not-met', 'not-met',
     'Not met because of haemoglobin at least 60 g/L: Haemoglobin 50 g/L on 2026-11-14 is below '
     '60 g/L.',
     {'value': 50, 'unit': 'g/L'}, 1),
    ('all-of-two-not-met', 'not-met',
     'Not met because of SLEDAI-2K at least 8: SLEDAI-2K score 5 on 2026-11-14 is below 8.',
     {'value': 5, 'unit': '1'}, 1),
    ('at-least-met', 'met',
     '2 of 3 parts are met (at least 2 needed): SLEDAI-2K at least 8: SLEDAI-2K score 10 on '
     '2026-11-14 is at least 8; haemoglobin at least 60 g/L: Haemoglobin 100 g/L on 2026-11-14 '
     'is at least 60 g/L.',
     None, 2),
    ('at-least-not-met', 'not-met',
     'Only 1 of 3 parts can be met (at least 2 needed): haemoglobin at least 60 g/L: '
     'Haemoglobin 50 g/L on 2026-11-14 is below 60 g/L; SpO2 at least 92%: SpO2 80% on '
     '2026-11-14 is below 92%.',
     None, 2),
    ('at-least-unknown', 'unknown',
     '1 of 3 parts are met, 2 needed, and these cannot be decided: haemoglobin at least 60 g/L: '
     'No haemoglobin on record.',
     None, 0),
    ('not-of-met', 'not-met',
     'Holds: SLEDAI-2K at least 8: SLEDAI-2K score 10 on 2026-11-14 is at least 8.',
     {'value': 10, 'unit': '1'}, 1),
    ('not-of-not-met', 'met',
     'Does not hold: SLEDAI-2K at least 8: SLEDAI-2K score 5 on 2026-11-14 is below 8.',
     {'value': 5, 'unit': '1'}, 1),
    ('not-of-unknown', 'unknown',
     'Cannot be decided: SLEDAI-2K at least 8: No SLEDAI-2K score on record; lab items alone '
     'score 0 (results of the last 30 days; score the clinical items with the SLEDAI-2K '
     'worksheet).',
     None, 0),


]
COMBINED_RECORDS = [
    ("any-of-met", "any-of", "", {"sledai": "met", "hb": "met"}),
    ("any-of-not-met", "any-of", "", {"sledai": "not-met", "hb": "not-met"}),
    ("any-of-unknown", "any-of", "", {"sledai": "not-met", "hb": "unknown", "spo2": "unknown"}),
    ("all-of-met", "all-of", "", {"sledai": "met", "hb": "met"}),
    ("all-of-unknown", "all-of", "", {"sledai": "met", "hb": "unknown"}),
    ("all-of-not-met", "all-of", "", {"sledai": "met", "hb": "not-met"}),
    # Two parts fail: the first names the reason and is the only evidence.
    ("all-of-two-not-met", "all-of", "", {"sledai": "not-met", "hb": "not-met"}),
    ("at-least-met", "at-least", "count = 2\n", {"sledai": "met", "hb": "met", "spo2": "not-met"}),
    ("at-least-not-met", "at-least", "count = 2\n",
     {"sledai": "met", "hb": "not-met", "spo2": "not-met"}),
    ("at-least-unknown", "at-least", "count = 2\n",
     {"sledai": "met", "hb": "unknown", "spo2": "not-met"}),
    ("not-of-met", "not", "", {"sledai": "met"}),
    ("not-of-not-met", "not", "", {"sledai": "not-met"}),
    ("not-of-unknown", "not", "", {"sledai": "unknown"}),
]


def _without_codes(reason: str) -> str:
    return re.sub(r" under the codes searched \([^)]*\)", "", reason)


@pytest.mark.parametrize(("rule", "extra", "parts", "expected", "reason", "value", "evidence"),
                         [(*c[1:], *e[1:]) for c, e in zip(COMBINED_RECORDS, COMBINED,
                                                            strict=True)],
                         ids=[c[0] for c in COMBINED_RECORDS])
def test_each_combinator_says_why_in_its_own_words(tmp_path, rule, extra, parts, expected,
                                                   reason, value, evidence):
    dirs = study_dir(tmp_path, combined(rule, list(parts), extra))
    found = decide(dirs, [r for name, out in parts.items() for r in VALUES[name][out]()])
    assert (found.result, _without_codes(found.reason)) == (expected, reason)
    assert (found.value.to_json() if found.value else None) == value
    assert len(found.evidence) == evidence


# ------------------------------------------------------------------ exclusions

EXCLUSION = ('\n[[criteria]]\nid = "low-hb"\ntype = "exclusion"\n'
             'text = "Haemoglobin below 60 g/L"\nrule = "threshold"\nconcept = "hemoglobin"\n'
             'operator = "<"\nthreshold = "60"\n')


@pytest.mark.parametrize(("value", "expected", "prefix"), [
    (59, "not-met", "Excluded: "), (60, "met", "Not excluded: "), (None, "unknown", ""),
])
def test_an_exclusion_is_met_when_the_patient_is_not_excluded(tmp_path, value, expected, prefix):
    dirs = study_dir(tmp_path, EXCLUSION)
    resources = [obs(HB, value, "g/L")] if value is not None else []
    found = decide(dirs, resources, "low-hb")
    assert (found.result, found.type) == (expected, "exclusion")
    assert found.reason.startswith(prefix)


@pytest.mark.parametrize(("concept", "code", "value", "unit", "reason"), [
    ("hemoglobin", HB, 59, "g/L", "Excluded: haemoglobin 59 g/L on 2026-11-14 is below 60 g/L."),
    # a name that keeps its capitals mid-sentence keeps them after the prefix too
    ("spo2", SPO2, 59, "%", "Excluded: SpO2 59% on 2026-11-14 is below 60%."),
], ids=["an ordinary word is lower-cased", "a name keeps its capitals"])
def test_an_exclusions_reason_reads_on_after_its_prefix(tmp_path, concept, code, value, unit,
                                                         reason):
    dirs = study_dir(tmp_path, EXCLUSION.replace('"hemoglobin"', f'"{concept}"'))
    found = decide(dirs, [obs(code, value, unit)], "low-hb")
    assert found.reason == reason


@pytest.mark.parametrize(("words", "shown"), [
    ("Gilbert syndrome", "gilbert syndrome"),  # an ordinary first word: lower-cased
    ("Gilbert\nsyndrome", "gilbert\nsyndrome"),  # the first word ends at any white space
    ("HbA1c-linked Gilbert", "HbA1c-linked Gilbert"),  # a name keeps its capitals
    ("X-linked Gilbert", "X-linked Gilbert"),  # and its signs
    ("B2 Gilbert", "B2 Gilbert"),
    ("Gb", "gb"),
    ("G", "G"),
], ids=["ordinary", "newline", "capitals", "signs", "digits", "two letters", "one letter"])
def test_an_exclusion_keeps_a_records_words_as_written_after_its_prefix(tmp_path, words, shown):
    body = ('\n[[criteria]]\nid = "gilbert"\ntype = "exclusion"\ntext = "Gilbert syndrome"\n'
            'rule = "diagnosis"\nconcept = "gilbert"\n')
    from tests.support.builders import SCT_GILBERT, condition
    named = condition(SCT_GILBERT, cid="g1")
    named["code"]["text"] = words
    found = decide(study_dir(tmp_path, body), [named], "gilbert")
    assert found.reason == f"Excluded: {shown} is recorded (Condition/g1)."


def test_an_exclusion_of_a_diagnosis_excludes_only_the_patient_who_has_it(tmp_path):
    body = ('\n[[criteria]]\nid = "gilbert"\ntype = "exclusion"\ntext = "Gilbert syndrome"\n'
            'rule = "diagnosis"\nconcept = "gilbert"\n')
    dirs = study_dir(tmp_path, body)
    from tests.support.builders import SCT_GILBERT, condition
    assert decide(dirs, [condition(SCT_GILBERT)], "gilbert").result == "not-met"
    assert decide(dirs, [], "gilbert").result == "met"


@pytest.mark.parametrize(("resources", "expected"), [
    ([], "met"),
    ([{"resourceType": "Procedure", "id": "car-t", "status": "completed",
       "subject": {"reference": "Patient/p1"},
       "code": {"coding": [{"system": "http://snomed.info/sct", "code": "48426002"}]}}],
     "not-met"),
    ([{"resourceType": "MedicationStatement", "id": "rtx", "status": "completed",
       "subject": {"reference": "Patient/p1"},
       "medicationCodeableConcept": {"coding": [{
           "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "121191"}]},
       "effectivePeriod": {"start": "2025-01-01", "end": "2025-02-01"}}], "not-met"),
])
def test_absence_reads_procedures_and_medications_too(tmp_path, resources, expected):
    body = ('\n[[criteria]]\nid = "none"\ntext = "No biopsy and no rituximab"\n'
            'rule = "absence"\nconcepts = ["kidney-biopsy", "rituximab"]\n')
    dirs = study_dir(tmp_path, body)
    assert decide(dirs, resources, "none").result == expected


# ------------------------------------------------------------------ applicability, wording

APPLIES = ('\n[[criteria]]\nid = "limited"\ntext = "Haemoglobin, women 18-50 only"\n'
           'rule = "threshold"\nconcept = "hemoglobin"\noperator = ">="\nthreshold = "60"\n'
           'applies_to = { sex = "female", min_age = 18, max_age = 50 }\n')


# (gender, age in years or a birth date, the result, the reason when not applicable)
APPLICABILITY = [
    ("male", 30, "met", "Not applicable: the patient is male (applies to females only)."),
    ("female", 17, "met", "Not applicable: the patient is 17 years old (applies from 18)."),
    ("female", 51, "met", "Not applicable: the patient is 51 years old (applies up to 50)."),
    ("female", 18, "unknown", None),      # applies: no haemoglobin on record
    ("female", 50, "unknown", None),
    (None, 30, "unknown", None),          # sex unknown: it may apply, so the rule decides
    ("other", 30, "unknown", None),       # neither female nor male: it may apply
    # Born on the as-of date: 0 years old, so the age limit applies.
    ("female", AS_OF.isoformat(), "met",
     "Not applicable: the patient is 0 years old (applies from 18)."),
    # A birth date after the as-of date or none: the age is unknown, so the criterion may apply.
    ("female", "2026-12-01", "unknown", None),
    ("female", "", "unknown", None),
]


@pytest.mark.parametrize(("gender", "years", "expected", "reason"), APPLICABILITY,
                         ids=[f"{g}-{y or 'no-birth'}" for g, y, *_ in APPLICABILITY])
def test_applicability_by_sex_and_age(tmp_path, gender, years, expected, reason):
    dirs = study_dir(tmp_path, APPLIES)
    birth = birth_for(years) if isinstance(years, int) else years or None
    evaluation = evaluate_patient([patient(birth, gender)], load_mappings(dirs), AS_OF,
                                  ["constructs"], strict=True)
    [found] = [c for c in evaluation.studies[0].criteria if c.id == "limited"]
    assert found.result == expected
    if reason is None:
        assert not found.reason.startswith("Not applicable"), found.reason
    else:
        assert found.reason == reason
        assert found.evidence == (f"Patient/{PID}",)


def test_a_criterion_for_males_does_not_apply_to_a_female(tmp_path):
    dirs = study_dir(tmp_path, APPLIES.replace('sex = "female", min_age = 18, max_age = 50',
                                               'sex = "male"'))
    found = decide(dirs, [], "limited", gender="female", birth=birth_for(30))
    assert (found.result, found.reason) == (
        "met", "Not applicable: the patient is female (applies to males only).")
    assert decide(dirs, [], "limited", gender="male", birth=birth_for(30)).result == "unknown"


def test_manual_criteria_can_be_limited_too(tmp_path):
    body = ('\n[[criteria]]\nid = "pregnancy-plan"\ntext = "No pregnancy planned (females)"\n'
            'rule = "manual"\nkind = "manual"\nscope = "patient"\n'
            'applies_to = { sex = "female" }\n')
    dirs = study_dir(tmp_path, body)
    assert decide(dirs, [], "pregnancy-plan", gender="male").result == "met"
    assert decide(dirs, [], "pregnancy-plan").result == "unknown"


def test_wording_from_the_mapping_says_what_a_result_means(tmp_path):
    body = ('\n[[criteria]]\nid = "hb"\ntext = "Haemoglobin"\nrule = "threshold"\n'
            'concept = "hemoglobin"\noperator = ">="\nthreshold = "60"\n'
            'wording = { met = "fit for collection", not-met = "transfuse first" }\n')
    dirs = study_dir(tmp_path, body)
    assert decide(dirs, [obs(HB, 61, "g/L")], "hb").reason.endswith(": fit for collection.")
    assert decide(dirs, [obs(HB, 59, "g/L")], "hb").reason.endswith(": transfuse first.")


@pytest.mark.parametrize(("body", "message"), [
    (combined("any-of", ["sledai"]), "criteria[combined].of: 1 part(s); at least 2 needed"),
    (combined("at-least", ["sledai", "hb"], "count = 3\n"),
     "criteria[combined].count: 3 is more than the 2 parts listed"),
    (combined("at-least", ["sledai", "hb"], "count = 0\n"),
     "criteria[combined].count: 0 is below the minimum 1"),
    (combined("any-of", ["sledai", "hb"]).replace('threshold = "8"', 'threshold = "-8"'),
     "criteria[combined].of[1].threshold: -8 is below the minimum 0"),
    (combined("any-of", ["sledai", "hb"]) + 'type = "exclusion"\n',
     "criteria[combined].of[2].type: only a whole criterion"),
    (APPLIES.replace("max_age = 50", "max_age = 10"), "criteria[limited].applies_to.min_age"),
    (APPLIES.replace('sex = "female"', 'sex = "f"'), "criteria[limited].applies_to.sex"),
    (EXCLUSION.replace('type = "exclusion"', 'type = "exclude"'), "criteria[low-hb].type"),
    ('\n[[criteria]]\nid = "m"\ntext = "manual"\nrule = "manual"\nkind = "manual"\n',
     "criteria[m].scope: required for rule 'manual'"),
])
def test_the_loader_refuses_wrong_constructs_with_file_and_key(tmp_path, body, message):
    with pytest.raises(MappingError) as err:
        load_mappings(study_dir(tmp_path, body))
    assert f"constructs.toml: {message}" in str(err.value)


# ------------------------------------------------------------------ manual confirmation scope

def _confirm(focus: dict[str, Any] | None) -> dict[str, Any]:
    from tests.support.builders import confirmation
    res = confirmation("agreed")
    if focus is not None:
        res["focus"] = [focus]
    return res


def _named(key: str) -> dict[str, Any]:
    return {"identifier": {"system": "urn:trial-eligibility:study", "value": key}}


@pytest.mark.parametrize(("scope", "focus", "expected"), [
    ("patient", None, "met"),                      # a fact about the patient: any study
    ("patient", _named("constructs"), "met"),
    ("patient", _named("pediatric-ln-cart"), "unknown"),   # named another study: not this one
    ("study", None, "unknown"),                    # per study: must name this study
    ("study", _named("constructs"), "met"),
    ("study", _named("pediatric-ln-cart"), "unknown"),
    ("study", {"reference": "ResearchStudy/rs-1"}, "met"),   # resolved via research_studies
    ("study", {"reference": "ResearchStudy/rs-2"}, "unknown"),
])
def test_a_confirmation_counts_only_where_its_scope_says(tmp_path, scope, focus, expected):
    body = (f'\n[[criteria]]\nid = "agreed"\ntext = "Agrees"\nrule = "manual"\n'
            f'kind = "manual"\nscope = "{scope}"\n')
    mappings = load_mappings(study_dir(tmp_path, body))
    record = [patient(birth_for(30)), _confirm(focus)]
    evaluation = evaluate_patient(record, mappings, AS_OF, ["constructs"], strict=True,
                                  research_studies={"constructs": "ResearchStudy/rs-1",
                                                    "pediatric-ln-cart": "ResearchStudy/rs-2"})
    assert evaluation.studies[0].criteria[0].result == expected


def test_a_study_resolved_from_a_research_study_in_the_record(tmp_path):
    body = ('\n[[criteria]]\nid = "agreed"\ntext = "Agrees"\nrule = "manual"\n'
            'kind = "manual"\nscope = "study"\n')
    mappings = load_mappings(study_dir(tmp_path, body))
    research_study = {"resourceType": "ResearchStudy", "id": "rs-9", "status": "active",
                      "identifier": [{"system": "urn:trial-eligibility:study",
                                      "value": "constructs"}]}
    record = [patient(birth_for(30)), research_study,
              _confirm({"reference": "ResearchStudy/rs-9"})]
    evaluation = evaluate_patient(record, mappings, AS_OF, ["constructs"], strict=True)
    assert evaluation.studies[0].criteria[0].result == "met"
