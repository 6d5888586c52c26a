"""threshold, uln-multiple, proteinuria, positive and ecog in their own words: each operator at its
limit, a value that cannot be compared, no value, a look-back, the G-CSF washout's edges, the
ULN exceptions (review, alternative limit, written as text only) and the newest of several
measures deciding, each with the value compared and the evidence it decided on."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from service.engine.evaluate import evaluate_patient
from service.engine.results import Value
from tests.engine.test_measurement_rules import lab
from tests.support.builders import (
    ALT,
    AS_OF,
    BILI,
    CD19_ABS,
    CD19_PCT,
    ECOG,
    LOINC,
    NEUT,
    PROT_24H,
    RX_FILGRASTIM,
    RX_PREDNISONE,
    SCORE,
    SCT_GILBERT,
    SCT_MYOSITIS,
    SLE,
    SUBJECT,
    UPCR,
    birth_for,
    condition,
    day,
    med_statement,
    obs,
    patient,
)

ON = "2026-11-14"  # day(1)


def named(resource: dict[str, Any], rid: str) -> dict[str, Any]:
    return {**resource, "id": rid}


def neut(value: str, when: str | None = None, rid: str = "r1", **kw: Any) -> dict[str, Any]:
    return named(lab(NEUT, value, "10*9/L", when or day(1), **kw), rid)


def gcsf(start: str | None, end: str | None = None, code: str = RX_FILGRASTIM,
         status: str = "completed") -> dict[str, Any]:
    return named(med_statement(code, start, end, status=status), "m1")


def written(text: str) -> dict[str, Any]:
    """A Condition with words only, no code."""
    return {"resourceType": "Condition", "id": "c2", "subject": SUBJECT, "code": {"text": text}}


def check(found: Any, outcome: str, reason: str, value: str | None, evidence: list[str],
          resources: list[dict[str, Any]]) -> None:
    assert (found.result, found.reason) == (outcome, reason)
    assert (found.value.value if found.value else None) == (
        Decimal(value) if value is not None else None)
    assert list(found.evidence) == evidence
    if found.value is not None:  # in the unit of the result it came from (canonical here)
        [source] = [r for r in resources if f"{r['resourceType']}/{r['id']}" == evidence[0]]
        quantity = source.get("valueQuantity") or source["valueRange"]["low"]
        assert found.value.unit == quantity["unit"]


def ranged(made: dict[str, Any], low: str, high: str) -> dict[str, Any]:
    """The result as a range of two ends in its unit (valueRange)."""
    unit = made.pop("valueQuantity")["unit"]
    made["valueRange"] = {"low": {"value": low, "unit": unit},
                          "high": {"value": high, "unit": unit}}
    return made


NEUTROPHILS = {"concept": "neutrophils", "operator": ">=", "threshold": "1.0"}
WASHOUT = {**NEUTROPHILS, "washout_concepts": ["filgrastim"], "washout_days": 14}
R1 = ["Observation/r1"]
WITH_GCSF = ["Observation/r1", "MedicationStatement/m1"]
WITHIN = (f"Neutrophils 2 10*9/L on {ON} was measured within 14 days of G-CSF "
          "(MedicationStatement/m1); repeat the count after washout.")
AT_LEAST = f"Neutrophils 2 10*9/L on {ON} is at least 1 10*9/L."
THRESHOLD = [
    ("at least, at the limit", {}, [neut("1.0")], "met", "1.0",
     f"Neutrophils 1 10*9/L on {ON} is at least 1 10*9/L.", R1),
    ("at least, under it", {}, [neut("0.99")], "not-met", "0.99",
     f"Neutrophils 0.99 10*9/L on {ON} is below 1 10*9/L.", R1),
    ("above, at the limit", {"operator": ">"}, [neut("1.0")], "not-met", "1.0",
     f"Neutrophils 1 10*9/L on {ON} is not above 1 10*9/L.", R1),
    ("above, over it", {"operator": ">"}, [neut("1.01")], "met", "1.01",
     f"Neutrophils 1.01 10*9/L on {ON} is above 1 10*9/L.", R1),
    ("below, at the limit", {"operator": "<"}, [neut("1.0")], "not-met", "1.0",
     f"Neutrophils 1 10*9/L on {ON} is not below 1 10*9/L.", R1),
    ("at most, at the limit", {"operator": "<="}, [neut("1.0")], "met", "1.0",
     f"Neutrophils 1 10*9/L on {ON} is at most 1 10*9/L.", R1),
    ("at most, over it", {"operator": "<="}, [neut("1.01")], "not-met", "1.01",
     f"Neutrophils 1.01 10*9/L on {ON} is above 1 10*9/L.", R1),
    ("below a value over the limit", {}, [neut("1.5", comparator="<")], "unknown", "1.5",
     f"Neutrophils <1.5 10*9/L on {ON} cannot be compared with 1 10*9/L.", R1),
    ("a range over the limit", {}, [ranged(neut("0"), "1.0", "1.5")], "met", "1.0",
     f"Neutrophils 1-1.5 10*9/L on {ON} is at least 1 10*9/L.", R1),
    ("no value", {}, [], "unknown", None,
     "No neutrophils on record under the codes searched (LOINC 26499-4, 751-8, 753-4).", []),
    ("look-back passed", {"lookback_days": 10}, [neut("2", day(11))], "unknown", None,
     "No neutrophils within 10 days (latest 2 10*9/L on 2026-11-04 is stale).", R1),
    ("look-back reached", {"lookback_days": 11}, [neut("2", day(11))], "met", "2",
     "Neutrophils 2 10*9/L on 2026-11-04 is at least 1 10*9/L.", R1),
    ("G-CSF ended on the first day of the washout", WASHOUT,
     [neut("2"), gcsf(day(15), day(15))], "unknown", "2", WITHIN, WITH_GCSF),
    ("G-CSF ended the day before the washout", WASHOUT,
     [neut("2"), gcsf(day(16), day(16))], "met", "2", AT_LEAST, R1),
    ("G-CSF given once before the washout", WASHOUT,
     [neut("2"), gcsf(day(20))], "met", "2", AT_LEAST, R1),
    ("G-CSF started before the washout and still taken", WASHOUT,
     [neut("2"), gcsf(day(20), status="active")], "unknown", "2", WITHIN, WITH_GCSF),
    ("G-CSF started on the day of the count", WASHOUT,
     [neut("2"), gcsf(day(1))], "unknown", "2", WITHIN, WITH_GCSF),
    ("G-CSF started the day after the count", WASHOUT,
     [neut("2", day(2)), gcsf(day(1))], "met", "2",
     "Neutrophils 2 10*9/L on 2026-11-13 is at least 1 10*9/L.", R1),
    ("G-CSF without a date", WASHOUT, [neut("2"), gcsf(None)], "unknown", "2",
     f"G-CSF is recorded without a date (MedicationStatement/m1), so the 14-day washout before "
     f"the count on {ON} cannot be checked.", WITH_GCSF),
    ("another medication in the washout", WASHOUT,
     [neut("2"), gcsf(day(3), code=RX_PREDNISONE)], "met", "2", AT_LEAST, R1),
    ("another medication before a G-CSF in the washout", WASHOUT,
     [neut("2"), named(med_statement(RX_PREDNISONE, day(3)), "m0"), gcsf(day(3))], "unknown",
     "2", WITHIN, WITH_GCSF),
    ("a G-CSF within the washout, under the limit", WASHOUT,
     [neut("0.5"), gcsf(day(3))], "unknown", "0.5",
     f"Neutrophils 0.5 10*9/L on {ON} was measured within 14 days of G-CSF "
     "(MedicationStatement/m1); repeat the count after washout.", WITH_GCSF),
]


@pytest.mark.parametrize(("params", "resources", "outcome", "value", "reason", "evidence"),
                         [c[1:] for c in THRESHOLD], ids=[c[0] for c in THRESHOLD])
def test_threshold_says_what_it_compared(rule_check, params, resources, outcome, value, reason,
                                         evidence):
    found = rule_check("threshold", {**NEUTROPHILS, **params}, resources)
    check(found, outcome, reason, value, evidence, resources)


def test_a_sledai_threshold_without_a_score_gives_the_lab_items_lower_bound(rule_check):
    found = rule_check("threshold", {"concept": "sledai-2k", "operator": ">=",
                                     "threshold": "6"}, [])
    check(found, "unknown",
          "No SLEDAI-2K score on record under the codes searched (local sledai-2k); lab items "
          "alone score 0 (results of the last 30 days; score the clinical items with the "
          "SLEDAI-2K worksheet).", None, [], [])


@pytest.mark.parametrize(("window", "reason", "evidence"), [
    (30, "lab items alone score 0 (results of the last 30 days; score the clinical items with "
         "the SLEDAI-2K worksheet).", []),
    (60, "lab items alone score 4: proteinuria 4 (results of the last 60 days; a lower bound: "
         "score the clinical items with the SLEDAI-2K worksheet).", R1),
])
def test_a_sledai_threshold_reads_the_lab_items_of_the_window_it_is_given(mappings, window,
                                                                          reason, evidence):
    resources = [patient(birth_for(30), "female"), upcr("2", day(40))]
    evaluation = evaluate_patient(resources, mappings, AS_OF, [SLE], strict=True,
                                  sledai_window_days=window)
    [found] = [c for c in evaluation.studies[0].criteria if c.id == "sledai-2k"]
    check(found, "unknown", "No SLEDAI-2K score on record under the codes searched (local "
          f"sledai-2k); {reason}", None, evidence, resources)


def alt(value: Any, high: float | None = 40, **kw: Any) -> dict[str, Any]:
    return named(lab(ALT, value, "U/L", day(1), high=high, **kw), "r1")


def bili(value: str) -> dict[str, Any]:
    return named(lab(BILI, value, "mg/dL", day(1), high=1.2), "r1")


def bili_below(value: str) -> dict[str, Any]:
    return named(lab(BILI, value, "mg/dL", day(1), high=1.2, comparator="<"), "r1")


def alt_range(low: int, high: int) -> dict[str, Any]:
    made = alt(None)
    made["valueRange"] = {"low": {"value": low, "unit": "U/L"},
                          "high": {"value": high, "unit": "U/L"}}
    return made


MYOSITIS = named(condition(SCT_MYOSITIS), "c1")
GILBERT = named(condition(SCT_GILBERT), "c1")
FROM = "from reference range of Observation/r1"
ALT_ULN = {"concept": "alt", "max_multiple": "3"}
REVIEW = {**ALT_ULN, "review_if": ["myositis"]}
BILI_ULN = {"concept": "bilirubin", "max_multiple": "1.5", "alternative_if": ["gilbert"],
            "alternative_max_multiple": "3"}
MUST_REVIEW = "the protocol makes an exception for it, so the investigator must review."
TEXT_ONLY = "and the protocol makes an exception for it: the investigator must review."
ULN_MULTIPLE = [
    ("at the limit", ALT_ULN, [alt(120)], "met", "120",
     f"ALT 120 U/L on {ON} = 3 x ULN (ULN 40 U/L {FROM}) is at most 3 x ULN.", R1),
    ("over the limit", ALT_ULN, [alt(121)], "not-met", "121",
     f"ALT 121 U/L on {ON} = 3.025 x ULN (ULN 40 U/L {FROM}) is above 3 x ULN.", R1),
    ("a fraction of a multiple", {**ALT_ULN, "max_multiple": "2.5"}, [alt(30)], "met", "30",
     f"ALT 30 U/L on {ON} = 0.75 x ULN (ULN 40 U/L {FROM}) is at most 2.5 x ULN.", R1),
    ("below a value over the limit", ALT_ULN, [alt(130, comparator="<")], "unknown", "130",
     f"ALT <130 U/L on {ON} = 3.25 x ULN (ULN 40 U/L {FROM}) cannot be compared with 3 x ULN.",
     R1),
    ("a range under the limit", ALT_ULN, [alt_range(50, 70)], "met", "50",
     f"ALT 50-70 U/L on {ON} (ULN 40 U/L {FROM}) is at most 3 x ULN.", R1),
    ("look-back passed", {**ALT_ULN, "lookback_days": 10},
     [named(lab(ALT, 30, "U/L", day(11), high=40), "r1")], "unknown", None,
     "No ALT within 10 days (latest 30 U/L on 2026-11-04 is stale).", R1),
    ("no ULN", ALT_ULN, [alt(100, high=None)], "unknown", "100",
     f"ALT 100 U/L on {ON} has no ULN: no reference range on the result and the age/sex "
     "table has no row for age 29 years.", R1),
    ("no value", ALT_ULN, [], "unknown", None,
     "No ALT on record under the codes searched (LOINC 1742-6, 1744-2).", []),
    ("over, with the exception recorded", REVIEW, [alt(121), MYOSITIS], "unknown", "121",
     f"ALT 121 U/L on {ON} = 3.025 x ULN (ULN 40 U/L {FROM}) is above 3 x ULN, but Code "
     f"26889001 is recorded: {MUST_REVIEW}", ["Observation/r1", "Condition/c1"]),
    ("over, without the exception", REVIEW, [alt(121)], "not-met", "121",
     f"ALT 121 U/L on {ON} = 3.025 x ULN (ULN 40 U/L {FROM}) is above 3 x ULN.", R1),
    ("within, the exception not needed", REVIEW, [alt(120), MYOSITIS], "met", "120",
     f"ALT 120 U/L on {ON} = 3 x ULN (ULN 40 U/L {FROM}) is at most 3 x ULN.", R1),
    ("over, the exception written only", REVIEW, [alt(121), written("Inflammatory myopathy")],
     "unknown", "121",
     f"ALT 121 U/L on {ON} = 3.025 x ULN (ULN 40 U/L {FROM}) is above 3 x ULN, but "
     f"Inflammatory myopathy is recorded as text only (Condition/c2), {TEXT_ONLY}",
     ["Observation/r1", "Condition/c2"]),
    ("the alternative limit, at it", BILI_ULN, [bili("3.6"), GILBERT], "met", "3.6",
     f"Total bilirubin 3.6 mg/dL on {ON} = 3 x ULN (ULN 1.2 mg/dL {FROM}) is at most 3 x ULN "
     "(limit for Code 27503000).", ["Observation/r1", "Condition/c1"]),
    ("the alternative limit, over it", BILI_ULN, [bili("3.7"), GILBERT], "not-met", "3.7",
     f"Total bilirubin 3.7 mg/dL on {ON} = 3.083 x ULN (ULN 1.2 mg/dL {FROM}) is above 3 x ULN "
     "(limit for Code 27503000).", ["Observation/r1", "Condition/c1"]),
    ("the usual limit without the alternative", BILI_ULN, [bili("3.6")], "not-met", "3.6",
     f"Total bilirubin 3.6 mg/dL on {ON} = 3 x ULN (ULN 1.2 mg/dL {FROM}) is above 1.5 x ULN.",
     R1),
    ("the usual limit, at it", BILI_ULN, [bili("1.8")], "met", "1.8",
     f"Total bilirubin 1.8 mg/dL on {ON} = 1.5 x ULN (ULN 1.2 mg/dL {FROM}) is at most 1.5 x "
     "ULN.", R1),
    ("the alternative written only", BILI_ULN, [bili("3.6"), written("Gilbert syndrome")],
     "unknown", "3.6",
     f"Total bilirubin 3.6 mg/dL on {ON} = 3 x ULN (ULN 1.2 mg/dL {FROM}) is above 1.5 x ULN, "
     f"but Gilbert syndrome is recorded as text only (Condition/c2), {TEXT_ONLY}",
     ["Observation/r1", "Condition/c2"]),
    ("over the alternative, also written out", BILI_ULN,
     [bili("3.7"), GILBERT, written("Gilbert syndrome")], "not-met", "3.7",
     f"Total bilirubin 3.7 mg/dL on {ON} = 3.083 x ULN (ULN 1.2 mg/dL {FROM}) is above 3 x ULN "
     "(limit for Code 27503000).", ["Observation/r1", "Condition/c1"]),
    ("over the alternative, with a review exception", {**BILI_ULN, "review_if": ["myositis"]},
     [bili("3.7"), GILBERT, named(condition(SCT_MYOSITIS), "c3")], "unknown", "3.7",
     f"Total bilirubin 3.7 mg/dL on {ON} = 3.083 x ULN (ULN 1.2 mg/dL {FROM}) is above 3 x ULN "
     f"(limit for Code 27503000), but Code 26889001 is recorded: {MUST_REVIEW}",
     ["Observation/r1", "Condition/c1", "Condition/c3"]),
    ("the alternative limit cannot be compared", BILI_ULN, [bili_below("4"), GILBERT], "unknown",
     "4", f"Total bilirubin <4 mg/dL on {ON} = 3.333 x ULN (ULN 1.2 mg/dL {FROM}) cannot be "
     "compared with 3 x ULN (limit for Code 27503000).", ["Observation/r1", "Condition/c1"]),
]


@pytest.mark.parametrize(("params", "resources", "outcome", "value", "reason", "evidence"),
                         [c[1:] for c in ULN_MULTIPLE], ids=[c[0] for c in ULN_MULTIPLE])
def test_uln_multiple_says_what_it_compared(rule_check, params, resources, outcome, value,
                                            reason, evidence):
    found = rule_check("uln-multiple", params, resources)
    check(found, outcome, reason, value, evidence, resources)
    if value is not None and "has no ULN" not in reason:
        unit = "U/L" if params["concept"] == "alt" else "mg/dL"
        uln = Decimal(40) if unit == "U/L" else Decimal("1.2")
        assert (found.uln.value, found.uln.unit, found.uln_source) == (uln, unit, FROM[5:])
    else:
        assert (found.uln, found.uln_source) == (None, None)


def upcr(value: str, when: str | None = None, rid: str = "r1", **kw: Any) -> dict[str, Any]:
    return named(lab(UPCR, value, "g/g", when or day(1), **kw), rid)


def protein(value: str, when: str | None = None, rid: str = "r1") -> dict[str, Any]:
    return named(lab(PROT_24H, value, "g/(24.h)", when or day(1)), rid)


PROTEINURIA = {"upcr_concept": "upcr", "upcr_min": "0.5",
               "protein_24h_concept": "urine-protein-24h", "protein_24h_min": "1"}
UPCR_NAME = "Urine protein/creatinine ratio"
NO_UPCR = ("no urine protein/creatinine ratio on record under the codes searched (LOINC "
           "13801-6, 2890-2, 34366-5)")
PROTEINURIA_CASES = [
    ("UPCR at its limit", PROTEINURIA, [upcr("0.5")], "met", "0.5",
     f"{UPCR_NAME} 0.5 g/g on {ON} is at least 0.5 g/g.", R1),
    ("UPCR under it", PROTEINURIA, [upcr("0.49")], "not-met", "0.49",
     f"{UPCR_NAME} 0.49 g/g on {ON} is below 0.5 g/g.", R1),
    ("UPCR below a value over it", PROTEINURIA, [upcr("0.6", comparator="<")], "unknown",
     "0.6", f"{UPCR_NAME} <0.6 g/g on {ON} cannot be compared with 0.5 g/g.", R1),
    ("24 h protein at its own limit", PROTEINURIA, [protein("1")], "met", "1",
     f"24 h urine protein 1 g/(24.h) on {ON} is at least 1 g/(24.h).", R1),
    ("a newer 24 h protein under its limit", PROTEINURIA,
     [protein("0.9"), upcr("2", day(2), "r2")], "not-met", "0.9",
     f"24 h urine protein 0.9 g/(24.h) on {ON} is below 1 g/(24.h).", R1),
    ("a newer UPCR over its limit", PROTEINURIA,
     [protein("0.9", day(3)), upcr("0.6", day(2), "r2")], "met", "0.6",
     f"{UPCR_NAME} 0.6 g/g on 2026-11-13 is at least 0.5 g/g.", ["Observation/r2"]),
    ("a UPCR range over its limit", PROTEINURIA, [ranged(upcr("0"), "0.5", "0.7")], "met",
     "0.5", f"{UPCR_NAME} 0.5-0.7 g/g on {ON} is at least 0.5 g/g.", R1),
    ("neither", PROTEINURIA, [], "unknown", None,
     f"N{NO_UPCR[1:]}; no 24 h urine protein on record under the codes searched (LOINC "
     "2889-4).", []),
    ("both stale", {**PROTEINURIA, "lookback_days": 10},
     [upcr("2", day(11)), protein("2", day(12), "r2")], "unknown", None,
     "No urine protein/creatinine ratio within 10 days (latest 2 g/g on 2026-11-04 is stale); "
     "no 24 h urine protein within 10 days (latest 2 g/(24.h) on 2026-11-03 is stale).",
     ["Observation/r1", "Observation/r2"]),
    ("UPCR only asked for", {"upcr_concept": "upcr", "upcr_min": "0.5"}, [protein("2")],
     "unknown", None, f"N{NO_UPCR[1:]}.", []),
]


@pytest.mark.parametrize(("params", "resources", "outcome", "value", "reason", "evidence"),
                         [c[1:] for c in PROTEINURIA_CASES],
                         ids=[c[0] for c in PROTEINURIA_CASES])
def test_proteinuria_says_what_it_compared(rule_check, params, resources, outcome, value,
                                           reason, evidence):
    check(rule_check("proteinuria", params, resources), outcome, reason, value, evidence, resources)


def cd19(code: str, value: str, unit: str, when: str | None = None, rid: str = "r1",
         **kw: Any) -> dict[str, Any]:
    return named(lab(code, value, unit, when or day(1), **kw), rid)


CD19 = {"concepts": ["cd19-percent", "cd19-count"]}
PERCENT = "CD19+ B cell percentage"
POSITIVE = [
    ("just above zero", [cd19(CD19_PCT, "0.1", "%")], "met", "0.1",
     f"{PERCENT} 0.1% on {ON} is above 0.", R1),
    ("zero", [cd19(CD19_PCT, "0", "%")], "not-met", "0", f"{PERCENT} 0% on {ON} is not above 0.",
     R1),
    ("below a positive value", [cd19(CD19_PCT, "1", "%", comparator="<")], "unknown", "1",
     f"{PERCENT} <1% on {ON} cannot be read as positive or not.", R1),
    ("a range above zero", [ranged(cd19(CD19_PCT, "0", "%"), "1", "2")], "met", "1",
     f"{PERCENT} 1-2% on {ON} is above 0.", R1),
    ("neither", [], "unknown", None,
     f"No {PERCENT} on record under the codes searched (LOINC 8117-4); no CD19+ B cell count "
     "on record under the codes searched (LOINC 8116-6).", []),
    ("a newer count decides", [cd19(CD19_PCT, "0", "%", day(3)),
                               cd19(CD19_ABS, "5", "/uL", day(2), "r2")], "met", "5",
     "CD19+ B cell count 5 /uL on 2026-11-13 is above 0.", ["Observation/r2"]),
    ("a newer percentage decides", [cd19(CD19_PCT, "0", "%", day(2)),
                                    cd19(CD19_ABS, "5", "/uL", day(3), "r2")], "not-met", "0",
     f"{PERCENT} 0% on 2026-11-13 is not above 0.", R1),
]


@pytest.mark.parametrize(("resources", "outcome", "value", "reason", "evidence"),
                         [c[1:] for c in POSITIVE], ids=[c[0] for c in POSITIVE])
def test_positive_says_what_it_read(rule_check, resources, outcome, value, reason, evidence):
    check(rule_check("positive", CD19, resources), outcome, reason, value, evidence, resources)


def test_positive_honours_its_look_back(rule_check):
    # The stale result is the evidence: a reviewer sees what was found and when.
    found = rule_check("positive", {**CD19, "lookback_days": 5},
                       [cd19(CD19_PCT, "3", "%", day(6))])
    check(found, "unknown",
          f"No {PERCENT} within 5 days (latest 3 % on 2026-11-09 is stale); no CD19+ B cell "
          "count on record under the codes searched (LOINC 8116-6).", None, ["Observation/r1"],
          [])
    both = rule_check("positive", {**CD19, "lookback_days": 5},
                      [cd19(CD19_PCT, "3", "%", day(6)),
                       cd19(CD19_ABS, "300", "/uL", day(7), rid="r2")])
    assert both.evidence == ("Observation/r1", "Observation/r2")


def ecog(value: int, when: str | None = None, code: str = ECOG, system: str = LOINC,
         rid: str = "e1") -> dict[str, Any]:
    return named(obs(code, system=system, value_integer=value, date=when or day(1)), rid)


def lansky_score(value: int, when: str | None = None) -> dict[str, Any]:
    return ecog(value, when, "lansky", SCORE, "l1")


def karnofsky(value: int, when: str | None = None) -> dict[str, Any]:
    return ecog(value, when, "89243-0", LOINC, "k1")


ECOG_PARAMS = {"concept": "ecog", "max_score": "2", "equivalents": ["lansky", "karnofsky"],
               "equivalence": [[90, 0], [70, 1], [50, 2], [30, 3], [10, 4], [0, 5]]}
NO_ECOG = "No ECOG score on record under the codes searched (LOINC 89247-1)."
ECOG_CASES = [
    ("at the maximum", {}, [ecog(2)], "met", "2", f"ECOG 2 on {ON} is within 0-2.", ["e1"]),
    ("above it", {}, [ecog(3)], "not-met", "3", f"ECOG 3 on {ON} is above 2.", ["e1"]),
    ("a lower maximum", {"max_score": "1"}, [ecog(2)], "not-met", "2",
     f"ECOG 2 on {ON} is above 1.", ["e1"]),
    ("none", {}, [], "unknown", None, NO_ECOG, []),
    ("Lansky at a floor", {}, [lansky_score(50)], "met", "2",
     f"Lansky 50 (ECOG equivalent 2) on {ON} is within 0-2.", ["l1"]),
    ("Lansky under a floor", {}, [lansky_score(49)], "not-met", "3",
     f"Lansky 49 (ECOG equivalent 3) on {ON} is above 2.", ["l1"]),
    ("Lansky at the top", {}, [lansky_score(100)], "met", "0",
     f"Lansky 100 (ECOG equivalent 0) on {ON} is within 0-2.", ["l1"]),
    ("a Lansky under every floor", {}, [lansky_score(-1)], "unknown", None, NO_ECOG, []),
    ("a newer Lansky decides", {}, [ecog(3, day(5)), lansky_score(90, day(2))], "met", "0",
     "Lansky 90 (ECOG equivalent 0) on 2026-11-13 is within 0-2.", ["l1"]),
    ("a newer ECOG decides", {}, [ecog(1, day(2)), lansky_score(30, day(5))], "met", "1",
     "ECOG 1 on 2026-11-13 is within 0-2.", ["e1"]),
    ("a newer Karnofsky decides", {}, [karnofsky(70, day(3)), lansky_score(10, day(4))], "met",
     "1", "Karnofsky 70 (ECOG equivalent 1) on 2026-11-12 is within 0-2.", ["k1"]),
    ("a newer Karnofsky decides against", {}, [lansky_score(50, day(4)), karnofsky(10, day(3))],
     "not-met", "4", "Karnofsky 10 (ECOG equivalent 4) on 2026-11-12 is above 2.", ["k1"]),
    ("look-back passed", {"lookback_days": 10}, [ecog(1, day(11)), lansky_score(90, day(12))],
     "unknown", None, "No ECOG score within 10 days (latest 1 on 2026-11-04 is stale).", ["e1"]),
    ("look-back reached by an equivalent", {"lookback_days": 10},
     [ecog(1, day(11)), lansky_score(90, day(10))], "met", "0",
     "Lansky 90 (ECOG equivalent 0) on 2026-11-05 is within 0-2.", ["l1"]),
    ("no equivalents asked for", {"equivalents": None, "equivalence": None},
     [lansky_score(90)], "unknown", None, NO_ECOG, []),
]


@pytest.mark.parametrize(("params", "resources", "outcome", "value", "reason", "evidence"),
                         [c[1:] for c in ECOG_CASES], ids=[c[0] for c in ECOG_CASES])
def test_ecog_says_which_score_decided(rule_check, params, resources, outcome, value, reason,
                                       evidence):
    params = {k: v for k, v in {**ECOG_PARAMS, **params}.items() if v is not None}
    found = rule_check("ecog", params, resources)
    assert (found.result, found.reason) == (outcome, reason)
    assert found.value == (Value(Decimal(value)) if value is not None else None)
    assert list(found.evidence) == [f"Observation/{e}" for e in evidence]
