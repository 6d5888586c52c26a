"""Loading the mappings: the shipped files load, and every kind of mistake names file and key."""

import shutil
from pathlib import Path

import pytest

from service.core.settings import REPO_ROOT
from service.engine.rules import RULES as ENGINE_RULES
from service.mappings import MappingError, load_mappings

SPEC_IDS = {
    "refractory-sle-cart": [
        "age", "sle-diagnosis", "refractory-disease", "sledai-2k", "lvef", "ecg", "egfr", "alt",
        "ast", "bilirubin", "spo2", "lung-lesions", "leukapheresis", "pregnancy",
        "contraception", "consent",
    ],
    "pediatric-ln-cart": [
        "age", "sle-diagnosis", "ln-biopsy", "sledai-2k", "refractory-ln", "proteinuria",
        "cd19-b-cells", "venous-access", "consent", "lymphocytes", "wbc", "neutrophils",
        "hemoglobin", "alt", "ast", "bilirubin", "egfr", "inr", "pt", "hemodynamic-stability",
        "ana", "ecog",
    ],
}
TERMINOLOGY_CODES = [
    "http://loinc.org|2160-0", "http://loinc.org|14682-9", "http://loinc.org|33914-3",
    "http://loinc.org|50384-7", "http://loinc.org|98979-8", "http://loinc.org|1742-6",
    "http://loinc.org|1920-8", "http://loinc.org|1975-2", "http://loinc.org|14631-6",
    "http://loinc.org|718-7", "http://loinc.org|26464-8", "http://loinc.org|26499-4",
    "http://loinc.org|26474-7", "http://loinc.org|34714-6", "http://loinc.org|5902-2",
    "http://loinc.org|5048-4", "http://loinc.org|29953-7", "http://loinc.org|59408-5",
    "http://loinc.org|18043-0", "http://loinc.org|8117-4", "http://loinc.org|8116-6",
    "http://loinc.org|2889-4", "http://loinc.org|2890-2", "http://loinc.org|2106-3",
    "http://loinc.org|82810-3", "http://loinc.org|89247-1", "http://loinc.org|8302-2",
    "http://loinc.org|29463-7", "urn:trial-eligibility:score|sledai-2k",
]


def test_studies_and_criteria_ids_match_the_spec(mappings):
    # The seed studies come first in seed order; a site may load more after them.
    assert list(mappings.studies)[:2] == list(SPEC_IDS)
    for key, ids in SPEC_IDS.items():
        assert [c.id for c in mappings.studies[key].criteria] == ids


def test_each_study_declares_its_diagnosis_criterion(mappings):
    for key in SPEC_IDS:
        assert mappings.studies[key].diagnosis_criteria == ("sle-diagnosis",)


def test_registry_numbers(mappings):
    assert mappings.studies["pediatric-ln-cart"].registry_id == "NCT06904729"
    assert mappings.studies["refractory-sle-cart"].registry_id == "NCT07233642"


def test_every_rule_has_an_evaluator():
    assert all(spec.evaluate for spec in ENGINE_RULES.values())


def test_terminology_codes_are_searched(mappings):
    codes = set(mappings.observation_codes())
    for token in TERMINOLOGY_CODES:
        assert token in codes


def test_icd10_codes_match_with_either_system_and_by_prefix(mappings):
    assert "sle" in mappings.concepts_for("http://hl7.org/fhir/sid/icd-10", "M32.14")
    assert "sle" in mappings.concepts_for("http://hl7.org/fhir/sid/icd-10-cm", "M3219")
    assert "sle" not in mappings.concepts_for("http://hl7.org/fhir/sid/icd-10-cm", "M32.0")
    assert "drug-induced-lupus" in mappings.concepts_for("http://hl7.org/fhir/sid/icd-10-cm",
                                                         "M32.0")


@pytest.fixture()
def copy(tmp_path):
    target = tmp_path / "mappings"
    shutil.copytree(REPO_ROOT / "mappings", target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("pediatric-ln-cart.toml", 'threshold = "60"', 'threshhold = "60"',
         "pediatric-ln-cart.toml: criteria[hemoglobin].threshhold: unknown key"),
        ("pediatric-ln-cart.toml", 'concept = "hemoglobin"', 'concept = "haemoglobinx"',
         "pediatric-ln-cart.toml: criteria[hemoglobin].concept: unknown concept 'haemoglobinx'"),
        ("concepts.toml", 'unit = "g/L"', 'unit = "g/Lx"',
         "concepts.toml: concepts.hemoglobin.unit"),
        ("pediatric-ln-cart.toml", 'rule = "ecog"', 'rule = "ecogg"',
         "pediatric-ln-cart.toml: criteria[ecog].rule: unknown rule 'ecogg'"),
        ("refractory-sle-cart.toml", 'threshold = "92"', 'threshold = "ninety"',
         "refractory-sle-cart.toml: criteria[spo2].threshold"),
        ("concepts.toml", 'kind = "condition"', 'kind = "diagnosis"',
         "concepts.toml: concepts.sle.kind"),
        ("concepts.toml", '"IU/L" = "U/L"', '"IU/L" = "g/L"',
         "concepts.toml: concepts.alt.unit_aliases.IU/L"),
        # Who gets a ResearchSubject is declared (api.md), never guessed.
        ("pediatric-ln-cart.toml", 'diagnosis_criteria = ["sle-diagnosis"]\n', '',
         "pediatric-ln-cart.toml: study.diagnosis_criteria: required"),
        ("pediatric-ln-cart.toml", 'diagnosis_criteria = ["sle-diagnosis"]',
         'diagnosis_criteria = ["sle-diagnoses"]',
         "pediatric-ln-cart.toml: study.diagnosis_criteria: 'sle-diagnoses' is not a criterion"),
        ("pediatric-ln-cart.toml", 'diagnosis_criteria = ["sle-diagnosis"]',
         'diagnosis_criteria = ["hemoglobin"]',
         "pediatric-ln-cart.toml: study.diagnosis_criteria: 'hemoglobin' must be an inclusion "
         "criterion with rule 'diagnosis' or 'sle-classification' and a concept"),
        ("pediatric-ln-cart.toml", 'diagnosis_criteria = ["sle-diagnosis"]',
         'diagnosis_criteria = "sle-diagnosis"',
         "pediatric-ln-cart.toml: study.diagnosis_criteria: expected a list"),
        ("pediatric-ln-cart.toml", 'id = "ecog"', 'id = "deceased"',
         "pediatric-ln-cart.toml: criteria[deceased].id: 'deceased' is reserved"),
    ],
)
def test_errors_name_file_and_key(copy, file, old, new, message):
    _edit(copy / file, old, new)
    with pytest.raises(MappingError) as err:
        load_mappings(copy)
    assert message in str(err.value)


def test_invalid_toml_names_the_file(copy):
    (copy / "site.toml").write_text("[concepts.sledai-2k\ncodes = [")
    with pytest.raises(MappingError, match="site.toml: invalid TOML"):
        load_mappings(copy)


def test_site_file_adds_local_codes_without_python(copy):
    (copy / "site.toml").write_text(
        '[concepts.sledai-2k]\ncodes = ["http://hospital.example/codes|SLEDAI"]\n'
    )
    loaded = load_mappings(copy)
    assert loaded.concepts_for("http://hospital.example/codes", "SLEDAI") == ("sledai-2k",)
    assert "http://hospital.example/codes|SLEDAI" in loaded.observation_codes()


def test_site_file_cannot_silently_redefine_a_concept(copy):
    (copy / "site.toml").write_text('[concepts.sledai-2k]\nunit = "%"\n')
    with pytest.raises(MappingError, match="site.toml: concepts.sledai-2k: already defined"):
        load_mappings(copy)


def test_exclusion_criteria_are_expressible(copy):
    with (copy / "pediatric-ln-cart.toml").open("a") as handle:
        handle.write('\n[[criteria]]\nid = "no-gilbert"\ntype = "exclusion"\n'
                     'text = "Gilbert syndrome"\nrule = "diagnosis"\nconcept = "gilbert"\n')
    loaded = load_mappings(copy)
    crit = loaded.studies["pediatric-ln-cart"].criteria[-1]
    assert (crit.id, crit.type, crit.rule) == ("no-gilbert", "exclusion", "diagnosis")


def test_absence_written_as_an_exclusion_is_refused(copy):
    # "excluded when none is recorded" is never what an author means (issue 12).
    with (copy / "pediatric-ln-cart.toml").open("a") as handle:
        handle.write('\n[[criteria]]\nid = "no-gilbert"\ntype = "exclusion"\n'
                     'text = "Gilbert syndrome"\nrule = "absence"\nconcepts = ["gilbert"]\n')
    with pytest.raises(MappingError, match=r"criteria\[no-gilbert\]\.rule: 'absence' already"):
        load_mappings(copy)
