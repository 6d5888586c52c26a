"""SLEDAI-2K lab descriptors and the lower bound they give (pure, through the real mappings)."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path
from typing import Any

import pytest

from service.engine import eular_acr_labs, sledai, sledai_labs
from service.engine.record import build_record
from service.engine.results import CriterionResult
from service.mappings import Mappings, load_mappings
from tests.support.builders import (
    AS_OF,
    LN,
    PID,
    PROT_24H,
    SCT_NEGATIVE,
    SCT_POSITIVE,
    SLE,
    UPCR,
    WBC,
    cc,
    day,
    eligible_sle_patient,
    obs,
    patient,
)

# LOINC codes of the lab concepts (mappings/concepts.toml).
PLT, TEMP, TEMP_ORAL, URBC, UWBC = "777-3", "8310-5", "8331-1", "13945-1", "5821-4"
RBC_CASTS_LPF, RBC_CASTS_HPF, PATH_CASTS = "5807-3", "51790-4", "101248-3"
C3, C4, DSDNA = "4485-9", "4498-2", "5130-0"


def findings_of(mappings: Mappings, *resources: dict[str, Any]) -> dict[str, sledai_labs.Finding]:
    record = build_record([patient(), *resources], mappings, PID)
    return sledai_labs.lab_findings(record, AS_OF)


def with_low(resource: dict[str, Any], low: float, unit: str) -> dict[str, Any]:
    resource["referenceRange"] = [{"low": {"value": low, "unit": unit, "code": unit}}]
    return resource


def flagged(resource: dict[str, Any], code: str) -> dict[str, Any]:
    resource["interpretation"] = [cc(code, "http://terminology.hl7.org/CodeSystem/"
                                       "v3-ObservationInterpretation")]
    return resource


def test_the_24_descriptors_and_their_weights_sum_to_105():
    assert len(sledai.DESCRIPTORS) == 24
    assert sum(d.weight for d in sledai.DESCRIPTORS) == 105  # docs/decisions.md "Codes": 0-105
    assert {d.key for d in sledai.DESCRIPTORS if d.lab} == set(sledai_labs.LAB_TESTS)


# The EULAR/ACR items' concepts with the kind each must be; lupus anticoagulant has no code
# verified yet (mappings/concepts.toml: a site adds its own), so it is the one without codes.
EULAR_ACR_CONCEPTS = {
    "wbc": "observation", "platelets": "observation", "direct-antiglobulin": "observation",
    "urine-protein-24h": "observation", "upcr": "observation", "anticardiolipin": "observation",
    "anti-b2gp1": "observation", "lupus-anticoagulant": "observation", "c3": "observation",
    "c4": "observation", "anti-dsdna": "observation", "anti-sm": "observation",
    "ln-class-iii-iv": "condition", "ln-class-ii": "condition", "ln-class-v": "condition",
    "ana-titer": "observation", "ana-presence": "observation",
}


def test_every_lab_concept_the_scores_read_is_mapping_data_read_in_the_record_batch(mappings):
    # Runs against mutants too (it reads no source): the concept lists name only what exists.
    searched = set(mappings.observation_codes())
    names = sledai_labs.lab_concepts()
    assert set(names) == {t.concept for tests in sledai_labs.LAB_TESTS.values() for t in tests}
    assert len(names) == len(set(names)) == 11
    for name in names:
        concept = mappings.concepts[name]
        assert concept.kind == "observation" and concept.codes, name
        assert concept.codes <= searched, name  # fetched by the one record read
    eular = eular_acr_labs.lab_concepts()
    assert len(eular) == len(set(eular))
    assert {n: mappings.concepts[n].kind for n in eular} == EULAR_ACR_CONCEPTS
    for name in eular:
        concept = mappings.concepts[name]
        if concept.kind == "observation" and name != "lupus-anticoagulant":
            assert concept.codes and concept.codes <= searched, name


def test_every_lab_code_is_mapping_data_read_in_the_record_batch(mappings):
    for module in (sledai, sledai_labs):
        assert "loinc.org" not in inspect.getsource(module), module.__name__


# (descriptor, the result, shown or not). Each is a record of a patient and that one result.
CASES = [
    # thrombocytopenia: < 100 x 10^9/L, counts in any unit the engine converts
    ("thrombocytopenia", obs(PLT, 80, "10*3/uL"), True),
    ("thrombocytopenia", obs(PLT, 99.9, "10*9/L"), True),
    ("thrombocytopenia", obs(PLT, 100, "10*9/L"), False),          # strictly below
    ("thrombocytopenia", obs(PLT, 150000, "/uL"), False),
    ("thrombocytopenia", obs(PLT, 80000, "/uL"), True),
    ("thrombocytopenia", obs(PLT, 60, "K/uL"), True),              # synonym table
    ("thrombocytopenia", obs(PLT, 20, "furlongs"), False),         # unconvertible: no finding
    ("thrombocytopenia", obs(PLT, 5000, "10*9/L"), False),         # implausible: no finding
    ("thrombocytopenia", obs(PLT, value_string="<50 x10^9/L"), True),
    # fever: > 38 °C, Fahrenheit through the UCUM offset scale
    ("fever", obs(TEMP, 38.5, "Cel"), True),
    ("fever", obs(TEMP, 38, "Cel"), False),                        # strictly above
    ("fever", obs(TEMP, 100.4, "[degF]"), False),                  # exactly 38 °C
    ("fever", obs(TEMP, 101.3, "[degF]"), True),                   # 38.5 °C
    ("fever", obs(TEMP_ORAL, 101, "°F"), True),                    # concept's synonym
    ("fever", obs(TEMP, 99, "[degF]"), False),
    ("fever", obs(TEMP, 101, "Cel"), False),                       # implausible (°F as Cel)
    ("fever", obs(TEMP, 39, "kg"), False),                         # unconvertible
    # haematuria and pyuria: > 5 cells per high power field, never another field
    ("hematuria", obs(URBC, 12, "/[HPF]"), True),
    ("hematuria", obs(URBC, 5, "/[HPF]"), False),
    ("hematuria", obs(URBC, 8, "RBC/hpf"), True),
    ("hematuria", obs(URBC, 12, "/[LPF]"), False),                 # another field
    ("hematuria", obs(URBC, 12, "%"), False),
    ("pyuria", obs(UWBC, 6, "{cells}/[HPF]"), True),
    ("pyuria", obs(UWBC, value_string="10-20 /hpf"), True),        # a range, both ends > 5
    ("pyuria", obs(UWBC, value_string="3-8 /hpf"), False),         # ends disagree: unsure
    ("pyuria", obs(UWBC, 2, "/[HPF]"), False),
    # urinary casts: red cell or pathologic casts seen, either field, or reported present
    ("urinary-casts", obs(RBC_CASTS_LPF, 2, "/[LPF]"), True),
    ("urinary-casts", obs(RBC_CASTS_LPF, 0, "/[LPF]"), False),
    ("urinary-casts", obs(RBC_CASTS_HPF, 1, "/hpf"), True),
    ("urinary-casts", obs(PATH_CASTS, value_concept=cc(SCT_POSITIVE)), True),
    ("urinary-casts", obs(PATH_CASTS, value_concept=cc(SCT_NEGATIVE)), False),
    # low complement: below the result's own lower limit (converted into the value's unit)
    ("low-complement", with_low(obs(C3, 60, "mg/dL"), 90, "mg/dL"), True),
    ("low-complement", with_low(obs(C3, 0.6, "g/L"), 90, "mg/dL"), True),
    ("low-complement", with_low(obs(C4, 20, "mg/dL"), 10, "mg/dL"), False),
    ("low-complement", obs(C3, 10, "mg/dL"), False),               # no lower limit
    ("low-complement", flagged(obs(C4, 8, "mg/dL"), "L"), True),   # the laboratory's flag
    # increased DNA binding: above the result's own upper limit, or reported positive
    ("increased-dna-binding", obs(DSDNA, 120, "[IU]/mL", ref_high=30), True),
    ("increased-dna-binding", obs(DSDNA, 20, "[IU]/mL", ref_high=30), False),
    ("increased-dna-binding", obs(DSDNA, value_concept=cc(SCT_POSITIVE)), True),
    ("increased-dna-binding", flagged(obs(DSDNA, value_string="reactive"), "H"), True),
    # proteinuria: > 0.5 g/24 h, or a protein/creatinine ratio > 0.5 g/g
    ("proteinuria", obs(PROT_24H, 1350, "mg/24h"), True),
    ("proteinuria", obs(PROT_24H, 400, "mg/(24.h)"), False),
    ("proteinuria", obs(UPCR, 0.8, "g/g"), True),
    ("proteinuria", obs(UPCR, 50, "mg/mmol"), False),              # 0.44 g/g
    ("proteinuria", obs(UPCR, 80, "mg/mmol"), True),               # 0.71 g/g
    # leukopenia: < 3 x 10^9/L
    ("leukopenia", obs(WBC, 2.5, "10*9/L"), True),
    ("leukopenia", obs(WBC, 2500, "/uL"), True),
    ("leukopenia", obs(WBC, 4.5, "10*3/uL"), False),
    ("leukopenia", obs(WBC, 1.0, "mmol/L"), False),                # unconvertible
]


@pytest.mark.parametrize(("key", "resource", "shown"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_lab_descriptor_reads_its_results(mappings, key, resource, shown):
    findings = findings_of(mappings, resource)
    assert findings[key].present is shown, findings[key]
    assert findings[key].evidence == ((f"Observation/{resource['id']}",) if shown else ())
    others = [k for k, f in findings.items() if f.present and k != key]
    assert others == []


@pytest.mark.parametrize(("when", "status", "shown"), [
    (day(0), "final", True),
    (day(30), "final", True),            # the 30th day before is inside (inclusive)
    (day(31), "final", False),
    (day(-1), "final", False),           # after the as-of date
    (day(3), "entered-in-error", False),
    (day(3), "preliminary", False),
    (day(3), "amended", True),
])
def test_only_usable_results_of_the_30_day_window_count(mappings, when, status, shown):
    findings = findings_of(mappings, obs(PLT, 40, "10*9/L", when, status=status))
    assert findings["thrombocytopenia"].present is shown


def test_a_site_code_added_in_the_mappings_is_read(tmp_path: Path):
    folder = tmp_path / "mappings"
    shutil.copytree(Path(__file__).resolve().parents[2] / "mappings", folder,
                    ignore=shutil.ignore_patterns("conformance"))
    (folder / "site.toml").write_text(
        '[concepts.platelets]\ncodes = ["http://hospital.example/codes|PLT"]\n')
    site = load_mappings(folder)
    local = obs("PLT", 45, "10*9/L", system="http://hospital.example/codes")
    assert findings_of(site, local)["thrombocytopenia"].present


def _without_score(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if "sledai-2k" not in str(r.get("code"))]


def test_the_unknown_sledai_reason_gives_the_full_lab_lower_bound_with_evidence(crit):
    labs = [
        obs(PLT, 80, "10*3/uL", day(4), oid="plt"),
        obs(TEMP, 101.3, "[degF]", day(2), oid="temp"),
        obs(URBC, 12, "/[HPF]", day(6), oid="rbc"),
        obs(UWBC, 9, "/[HPF]", day(6), oid="wbc-urine"),
        obs(RBC_CASTS_LPF, 2, "/[LPF]", day(6), oid="casts"),
        with_low(obs(C3, 60, "mg/dL", day(6), oid="c3"), 90, "mg/dL"),
        obs(PLT, 20, "10*9/L", day(45), oid="plt-old"),           # outside the window
        obs(TEMP, 39, "kg", day(1), oid="temp-kg"),                 # no unit: no finding
    ]
    resources = _without_score(eligible_sle_patient()) + labs
    for study in (SLE, LN):
        result = crit(resources, study, "sledai-2k")
        assert result.result == "unknown"
        assert ("lab items alone score 16: urinary casts 4, haematuria 4, pyuria 4, "
                "low complement 2, fever 1, thrombocytopenia 1") in result.reason
        assert set(result.evidence) == {"Observation/plt", "Observation/temp", "Observation/rbc",
                                        "Observation/wbc-urine", "Observation/casts",
                                        "Observation/c3"}


def test_a_recorded_score_is_used_and_the_labs_are_not(crit):
    resources = eligible_sle_patient() + [obs(PLT, 80, "10*3/uL", day(4), oid="plt")]
    result = crit(resources, SLE, "sledai-2k")
    assert result.result == "met" and "lab items" not in result.reason


def test_no_lab_item_says_zero_and_stays_unknown(mappings):
    unknown = CriterionResult(id="sledai-2k", result="unknown", reason="No SLEDAI-2K score.")
    record = build_record([patient(), obs(PLT, 250, "10*9/L")], mappings, PID)
    out = sledai.with_lab_lower_bound(unknown, record, AS_OF)
    assert out.result == "unknown" and "lab items alone score 0" in out.reason
    assert out.evidence == ()


@pytest.mark.parametrize(("window", "labs", "reason", "evidence"), [
    (30, [obs(PLT, 80, "10*9/L", day(20), oid="plt")],
     "No SLEDAI-2K score; lab items alone score 1: thrombocytopenia 1 (results of the last 30 "
     "days; a lower bound: score the clinical items with the SLEDAI-2K worksheet).",
     ("Observation/x", "Observation/plt")),
    (10, [obs(PLT, 80, "10*9/L", day(20), oid="plt")],
     "No SLEDAI-2K score; lab items alone score 0 (results of the last 10 days; score the "
     "clinical items with the SLEDAI-2K worksheet).", ("Observation/x",)),
    (30, [], "No SLEDAI-2K score; lab items alone score 0 (results of the last 30 days; score "
     "the clinical items with the SLEDAI-2K worksheet).", ("Observation/x",)),
], ids=["a lab item", "outside a shorter window", "none"])
def test_the_lab_lower_bound_in_its_exact_words(mappings, window, labs, reason, evidence):
    unknown = CriterionResult(id="sledai-2k", result="unknown", reason="No SLEDAI-2K score.",
                              evidence=("Observation/x",))
    record = build_record([patient(), *labs], mappings, PID)
    out = sledai.with_lab_lower_bound(unknown, record, AS_OF, window)
    assert (out.result, out.reason, out.evidence) == ("unknown", reason, evidence)


def test_no_lab_item_is_said_as_a_bare_zero():
    assert sledai.lower_bound_reason({}) == "lab items alone score 0"
