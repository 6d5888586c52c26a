"""Overall status per study, the two fully eligible patients, and what every result carries."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from service.engine.evaluate import evaluate_patient
from service.engine.results import CriterionResult, Value, overall_status
from tests.support.builders import (
    ALT,
    ANA,
    AS_OF,
    AST,
    BILI,
    CD19_PCT,
    ECG,
    ECOG,
    EGFR,
    HB,
    HCG_URINE,
    INR,
    LN,
    LVEF,
    LYMPH,
    NEUT,
    PT,
    RX_HCQ,
    RX_MMF,
    SCT_ECG_ABNORMAL,
    SCT_KIDNEY_BIOPSY,
    SCT_POSITIVE,
    SCT_SLE,
    SLE,
    SPO2,
    UPCR,
    WBC,
    WEIGHT,
    birth_for,
    cc,
    confirmation,
    day,
    eligible_ln_patient,
    eligible_sle_patient,
    obs,
    patient,
    procedure,
    sledai,
)

# docs/decisions.md, in the order listed there (the ids are part of the public API).
SPEC_IDS = {
    SLE: ["age", "sle-diagnosis", "refractory-disease", "sledai-2k", "lvef", "ecg", "egfr",
          "alt", "ast", "bilirubin", "spo2", "lung-lesions", "leukapheresis", "pregnancy",
          "contraception", "consent"],
    LN: ["age", "sle-diagnosis", "ln-biopsy", "sledai-2k", "refractory-ln", "proteinuria",
         "cd19-b-cells", "venous-access", "consent", "lymphocytes", "wbc", "neutrophils",
         "hemoglobin", "alt", "ast", "bilirubin", "egfr", "inr", "pt", "hemodynamic-stability",
         "ana", "ecog"],
}
SPEC_MANUAL = {
    SLE: {"ecg", "lung-lesions", "leukapheresis", "contraception", "consent"},
    LN: {"venous-access", "consent", "hemodynamic-stability"},
}
ELIGIBLE = {SLE: eligible_sle_patient, LN: eligible_ln_patient}

Resources = list[dict[str, Any]]
Mutation = Callable[[Resources], Resources]


def code_of(resource: dict[str, Any]) -> str | None:
    for key in ("code", "medicationCodeableConcept"):
        concept = resource.get(key)
        if isinstance(concept, dict) and concept.get("coding"):
            return concept["coding"][0].get("code")
    return None


def without(*codes: str, rtype: str | None = None) -> Mutation:
    """Drop resources whose (first) code is one of `codes` (or every resource of rtype)."""
    def mutate(res: Resources) -> Resources:
        return [r for r in res if not (
            (rtype is not None and r["resourceType"] == rtype) or code_of(r) in codes)]
    return mutate


def plus(*new: dict[str, Any]) -> Mutation:
    """Add resources (usually a newer failing value)."""
    return lambda res: [*res, *new]


def replace_patient(**kw: Any) -> Mutation:
    return lambda res: [patient(**kw), *[r for r in res if r["resourceType"] != "Patient"]]


def chain(*mutations: Mutation) -> Mutation:
    def mutate(res: Resources) -> Resources:
        for m in mutations:
            res = m(res)
        return res
    return mutate


# One change per row: which criterion it should flip, and to what.
MUTATIONS: list[tuple[str, str, str, Mutation]] = [
    # --- refractory-sle-cart, not-met
    (SLE, "age", "not-met", replace_patient(birth_date=birth_for(4), gender="female")),
    (SLE, "sle-diagnosis", "not-met", without(SCT_SLE)),
    (SLE, "refractory-disease", "not-met", without(RX_HCQ)),
    (SLE, "sledai-2k", "not-met", plus(sledai(7, day(1)))),
    (SLE, "lvef", "not-met", plus(obs(LVEF, 50, "%", day(1)))),
    (SLE, "ecg", "not-met", plus(obs(ECG, value_concept=cc(SCT_ECG_ABNORMAL), date=day(1)))),
    (SLE, "egfr", "not-met", plus(obs(EGFR, 25, "mL/min/{1.73_m2}", day(1)))),
    (SLE, "alt", "not-met", plus(obs(ALT, 76, "U/L", day(1), ref_high=25))),
    (SLE, "ast", "not-met", plus(obs(AST, 109, "U/L", day(1), ref_high=36))),
    (SLE, "bilirubin", "not-met", plus(obs(BILI, 2.1, "mg/dL", day(1), ref_high=1.0))),
    (SLE, "spo2", "not-met", plus(obs(SPO2, 91, "%", day(1)))),
    (SLE, "lung-lesions", "not-met", plus(confirmation("lung-lesions", False, day(1)))),
    (SLE, "leukapheresis", "not-met", plus(confirmation("leukapheresis", False, day(1)))),
    (SLE, "pregnancy", "not-met",
     plus(obs(HCG_URINE, value_concept=cc(SCT_POSITIVE, display="Positive"), date=day(1)))),
    (SLE, "contraception", "not-met", plus(confirmation("contraception", False, day(1)))),
    # --- refractory-sle-cart, unknown
    (SLE, "age", "unknown", replace_patient(birth_date=None, gender="female")),
    (SLE, "refractory-disease", "unknown", without(WEIGHT)),
    (SLE, "sledai-2k", "unknown", without("sledai-2k")),
    (SLE, "lvef", "unknown", without(LVEF)),
    (SLE, "ecg", "unknown", without(ECG)),
    (SLE, "egfr", "unknown", without(EGFR)),
    (SLE, "alt", "unknown", without(ALT)),
    (SLE, "ast", "unknown", without(AST)),
    (SLE, "bilirubin", "unknown", without(BILI)),
    (SLE, "spo2", "unknown", without(SPO2)),
    (SLE, "lung-lesions", "unknown", without("lung-lesions")),
    (SLE, "leukapheresis", "unknown", without("leukapheresis")),
    (SLE, "pregnancy", "unknown", without(HCG_URINE)),
    (SLE, "contraception", "unknown", without("contraception")),
    (SLE, "consent", "unknown", without(rtype="Consent")),
    # --- pediatric-ln-cart, not-met
    (LN, "age", "not-met", replace_patient(birth_date=birth_for(19), gender="male")),
    (LN, "sle-diagnosis", "not-met", without(SCT_SLE)),
    (LN, "ln-biopsy", "not-met",
     chain(without(SCT_KIDNEY_BIOPSY), plus(procedure(when=day(200))))),
    (LN, "sledai-2k", "not-met", plus(sledai(6, day(1)))),
    (LN, "refractory-ln", "not-met", without(RX_MMF)),
    (LN, "proteinuria", "not-met", plus(obs(UPCR, 0.3, "g/g", day(1)))),
    (LN, "cd19-b-cells", "not-met", plus(obs(CD19_PCT, 0, "%", day(1)))),
    (LN, "venous-access", "not-met", plus(confirmation("venous-access", False, day(1)))),
    (LN, "lymphocytes", "not-met", plus(obs(LYMPH, 0.9, "10*3/uL", day(1)))),
    (LN, "wbc", "not-met", plus(obs(WBC, 2.5, "10*3/uL", day(1)))),
    (LN, "neutrophils", "not-met", plus(obs(NEUT, 0.8, "10*3/uL", day(1)))),
    (LN, "hemoglobin", "not-met", plus(obs(HB, 5.5, "g/dL", day(1)))),
    (LN, "alt", "not-met", plus(obs(ALT, 80, "U/L", day(1), ref_high=25))),
    (LN, "ast", "not-met", plus(obs(AST, 140, "U/L", day(1), ref_high=44))),
    (LN, "bilirubin", "not-met", plus(obs(BILI, 1.6, "mg/dL", day(1), ref_high=1.0))),
    (LN, "inr", "not-met", plus(obs(INR, 1.9, "{INR}", day(1), ref_high=1.2))),
    (LN, "pt", "not-met", plus(obs(PT, 21, "s", day(1), ref_high=13.5))),
    (LN, "hemodynamic-stability", "not-met",
     plus(confirmation("hemodynamic-stability", False, day(1)))),
    (LN, "ana", "not-met", plus(obs(ANA, value_ratio=(1, 40), date=day(1)))),
    (LN, "ecog", "not-met", plus(obs(ECOG, value_integer=3, date=day(1)))),
    # eGFR < 30 in this patient (class IV nephritis) is the protocol exception: unknown
    (LN, "egfr", "unknown", plus(obs(EGFR, 20, "mL/min/{1.73_m2}", day(1)))),
    # --- pediatric-ln-cart, unknown
    (LN, "age", "unknown", replace_patient(birth_date=None, gender="male")),
    (LN, "ln-biopsy", "unknown",
     chain(without(SCT_KIDNEY_BIOPSY), plus(procedure(when=None)))),
    (LN, "sledai-2k", "unknown", without("sledai-2k")),
    (LN, "refractory-ln", "unknown", without(rtype="MedicationStatement")),
    (LN, "proteinuria", "unknown", without(UPCR)),
    (LN, "cd19-b-cells", "unknown", without(CD19_PCT)),
    (LN, "venous-access", "unknown", without("venous-access")),
    (LN, "consent", "unknown", without(rtype="Consent")),
    (LN, "lymphocytes", "unknown", without(LYMPH)),
    (LN, "wbc", "unknown", without(WBC)),
    (LN, "neutrophils", "unknown", without(NEUT)),
    (LN, "hemoglobin", "unknown", without(HB)),
    (LN, "alt", "unknown", without(ALT)),
    (LN, "ast", "unknown", without(AST)),
    (LN, "bilirubin", "unknown", without(BILI)),
    (LN, "inr", "unknown", without(INR)),
    (LN, "pt", "unknown", without(PT)),
    (LN, "hemodynamic-stability", "unknown", without("hemodynamic-stability")),
    (LN, "ana", "unknown", without(ANA)),
    (LN, "ecog", "unknown", without(ECOG)),
]


def test_mutation_table_covers_every_criterion():
    for key, ids in SPEC_IDS.items():
        assert {cid for k, cid, _, _ in MUTATIONS if k == key} == set(ids)


@pytest.mark.parametrize("key", [SLE, LN])
def test_mappings_define_the_spec_criteria_in_order(mappings, key):
    study = mappings.studies[key]
    assert [c.id for c in study.criteria] == SPEC_IDS[key]
    assert {c.id for c in study.criteria if c.kind == "manual"} == SPEC_MANUAL[key]


@pytest.mark.parametrize("key", [SLE, LN])
def test_fully_eligible_patient(study, mappings, key):
    result = study(ELIGIBLE[key](), key)
    assert result.status == "eligible"
    assert [c.id for c in result.criteria] == SPEC_IDS[key]
    for c in result.criteria:
        assert c.result == "met", (c.id, c.reason)
        assert c.evidence, f"{c.id} has no evidence"


@pytest.mark.parametrize("key,cid,expected,mutate", MUTATIONS,
                         ids=[f"{k[:3]}-{c}-{e}" for k, c, e, _ in MUTATIONS])
def test_one_change_flips_one_criterion_and_the_status(study, key, cid, expected, mutate):
    result = study(mutate(ELIGIBLE[key]()), key)
    by_id = {c.id: c for c in result.criteria}
    assert by_id[cid].result == expected, by_id[cid].reason
    others = {i: c.result for i, c in by_id.items() if i != cid and c.result != "met"}
    assert others == {}, others
    assert result.status == ("ineligible" if expected == "not-met" else "potential-candidate")


@pytest.mark.parametrize("key", [SLE, LN])
def test_not_met_beats_unknown(study, key):
    first_not_met = next(m for k, _, e, m in MUTATIONS if k == key and e == "not-met")
    unknown = without(rtype="Consent")
    result = study(chain(first_not_met, unknown)(ELIGIBLE[key]()), key)
    assert {c.result for c in result.criteria} == {"met", "not-met", "unknown"}
    assert result.status == "ineligible"


def _r(outcome: str) -> CriterionResult:
    return CriterionResult(id="x", result=outcome, reason="because")  # type: ignore[arg-type]


@pytest.mark.parametrize("outcomes,status", [
    (["met"], "eligible"),
    (["met", "met"], "eligible"),
    (["met", "unknown"], "potential-candidate"),
    (["unknown", "unknown"], "potential-candidate"),
    (["met", "not-met"], "ineligible"),
    (["unknown", "not-met", "met"], "ineligible"),
    (["not-met"], "ineligible"),
])
def test_overall_status_table(outcomes, status):
    assert overall_status([_r(o) for o in outcomes]) == status


# --------------------------------------------------------------------------- reasons and values

EMPTY_REASON_WORDS = {
    SLE: {
        "age": None, "sle-diagnosis": "diagnosis", "refractory-disease": "medication",
        "sledai-2k": "sledai", "lvef": "lvef", "ecg": "confirm", "egfr": "creatinine",
        "alt": "alt", "ast": "ast", "bilirubin": "bilirubin", "spo2": "spo2",
        "lung-lesions": "confirm", "leukapheresis": "confirm", "pregnancy": "pregnancy test",
        "contraception": "confirm", "consent": "consent",
    },
    LN: {
        "age": None, "sle-diagnosis": "diagnosis", "ln-biopsy": "lupus nephritis",
        "sledai-2k": "sledai", "refractory-ln": "medication", "proteinuria": "protein",
        "cd19-b-cells": "cd19", "venous-access": "confirm", "consent": "consent",
        "lymphocytes": "lymphocytes", "wbc": "wbc", "neutrophils": "neutrophils",
        "hemoglobin": "haemoglobin", "alt": "alt", "ast": "ast", "bilirubin": "bilirubin",
        "egfr": "creatinine", "inr": "inr", "pt": "pt", "hemodynamic-stability": "confirm",
        "ana": "ana", "ecog": "ecog",
    },
}


@pytest.mark.parametrize("key", [SLE, LN])
def test_empty_record_says_what_is_missing(study, key):
    result = study([patient(birth_for(15, 10), "female")], key)
    assert result.status == "ineligible"   # no SLE diagnosis
    for c in result.criteria:
        word = EMPTY_REASON_WORDS[key][c.id]
        if c.id == "age":
            assert c.result == "met"
            continue
        if c.id in ("sle-diagnosis", "ln-biopsy"):
            assert c.result == "not-met", c.reason
        else:
            assert c.result == "unknown", (c.id, c.reason)
        assert word in c.reason.lower(), (c.id, c.reason)


@pytest.mark.parametrize("key", [SLE, LN])
def test_values_are_in_the_concepts_canonical_unit(study, mappings, key):
    result = study(ELIGIBLE[key](), key)
    criteria = {c.id: c for c in mappings.studies[key].criteria}
    checked = 0
    for c in result.criteria:
        params = criteria[c.id].params
        if criteria[c.id].rule in ("threshold", "uln-multiple"):
            unit = mappings.concepts[params["concept"]].unit
            assert c.value is not None and c.value.unit == unit, (c.id, c.value)
            checked += 1
    assert checked >= 5


def test_observation_evidence_points_at_the_values_used(study):
    res = eligible_ln_patient()
    hb = next(r for r in res if code_of(r) == HB)
    result = study(res, LN)
    c = next(c for c in result.criteria if c.id == "hemoglobin")
    assert c.evidence == (f"Observation/{hb['id']}",)
    assert c.value.value == 115 and c.value.unit == "g/L"


def test_json_shape_of_an_evaluation(mappings):
    evaluation = evaluate_patient(eligible_ln_patient(), mappings, AS_OF, strict=True)
    body = evaluation.to_json({LN: "ResearchStudy/abc"})
    assert body["patient"] == "Patient/p1"
    assert body["asOf"] == AS_OF.isoformat()
    assert [s["study"] for s in body["studies"]][:2] == [SLE, LN]
    ln = next(s for s in body["studies"] if s["study"] == LN)
    assert ln["researchStudy"] == "ResearchStudy/abc"
    assert ln["status"] == "eligible"
    hb = next(c for c in ln["criteria"] if c["id"] == "hemoglobin")
    assert hb["result"] == "met"
    assert hb["value"] == {"value": 115, "unit": "g/L"}
    assert hb["evidence"] and hb["evidence"][0].startswith("Observation/")
    assert isinstance(hb["reason"], str) and hb["reason"]


@pytest.mark.parametrize(("value", "unit", "written"), [
    (Decimal("10.0"), "mg/dL", '{"value": 10, "unit": "mg/dL"}'),   # integral: a JSON integer
    (Decimal("0.125"), None, '{"value": 0.125}'),
    (7, None, '{"value": 7}'),
    ("positive", None, '{"value": "positive"}'),
])
def test_a_compared_value_is_written_as_json_numbers_are(value, unit, written):
    assert json.dumps(Value(value, unit).to_json()) == written
