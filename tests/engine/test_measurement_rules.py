"""The measurement rules at their limits, each asserting the value compared and the evidence
(not only the result): normal-limit on either side and at a multiple, the newest of several
concepts deciding `positive`, comparators at the limit for proteinuria, positive and
uln-multiple, a look-back set by the mapping, and a G-CSF recorded without a date."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from service.core.settings import REPO_ROOT
from service.engine.evaluate import evaluate_patient
from service.engine.results import CriterionResult
from service.mappings import load_mappings
from tests.support.builders import (
    ALT,
    AS_OF,
    CD19_ABS,
    CD19_PCT,
    NEUT,
    PROT_24H,
    UPCR,
    birth_for,
    day,
    med_statement,
    obs,
    patient,
)

C3_CODE = "4485-9"  # LOINC complement C3 (mappings/concepts.toml)
STUDY = '''[study]
key = "measurements"
title = "Measurement rules under test"
diagnosis_criteria = []

[[criteria]]
id = "alt-2uln"
text = "ALT at most 2 x ULN"
rule = "normal-limit"
concept = "alt"
limit = "high"
operator = "<="
multiple = "2"

[[criteria]]
id = "c3-low"
text = "C3 below its lower limit of normal"
rule = "normal-limit"
concept = "c3"
limit = "low"
operator = "<"

[[criteria]]
id = "cd19"
text = "CD19 expressed"
rule = "positive"
concepts = ["cd19-percent", "cd19-count"]

[[criteria]]
id = "proteinuria"
text = "Proteinuria at least 0.5"
rule = "proteinuria"
upcr_concept = "upcr"
upcr_min = "0.5"
protein_24h_concept = "urine-protein-24h"
protein_24h_min = "0.5"

[[criteria]]
id = "alt-3uln"
text = "ALT at most 3 x ULN"
rule = "uln-multiple"
concept = "alt"
max_multiple = "3"

[[criteria]]
id = "neutrophils-recent"
text = "Neutrophils at least 1 x 10^9/L within 10 days"
rule = "threshold"
concept = "neutrophils"
operator = ">="
threshold = "1.0"
lookback_days = 10

[[criteria]]
id = "neutrophils-washout"
text = "Neutrophils at least 1 x 10^9/L, no G-CSF within 14 days"
rule = "threshold"
concept = "neutrophils"
operator = ">="
threshold = "1.0"
washout_concepts = ["filgrastim"]
washout_days = 14
'''


@pytest.fixture(scope="module")
def mappings(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder: Path = tmp_path_factory.mktemp("measurements")
    (folder / "measurements.toml").write_text(STUDY)
    return load_mappings(f"{REPO_ROOT / 'mappings'}:{folder}")


def decide(mappings: Any, cid: str, *resources: dict[str, Any]) -> CriterionResult:
    evaluation = evaluate_patient([patient(birth_for(12)), *resources], mappings, AS_OF,
                                  ["measurements"], strict=True)
    [found] = [c for c in evaluation.studies[0].criteria if c.id == cid]
    return found


def lab(code: str, value: Any, unit: str, date: str | None = None, *,
        comparator: str | None = None, low: float | None = None,
        high: float | None = None) -> dict[str, Any]:
    made = obs(code, value, unit, date, comparator=comparator)
    bounds = {k: {"value": v, "unit": unit} for k, v in (("low", low), ("high", high))
              if v is not None}
    if bounds:
        made["referenceRange"] = [bounds]
    return made


def check(found: CriterionResult, outcome: str, value: str | None, evidence: list[str]) -> None:
    assert found.result == outcome, found.reason
    assert (found.value.value if found.value else None) == (
        Decimal(value) if value is not None else None)
    assert list(found.evidence) == evidence


@pytest.mark.parametrize(("value", "comparator", "outcome"), [
    (80, None, "met"),         # exactly 2 x the ULN of 40
    (81, None, "not-met"),
    (40, None, "met"),
    (79, "<", "met"),
    (85, ">", "not-met"),
    (70, ">", "unknown"),      # above 70: could be under or over 80
])
def test_normal_limit_high_at_a_multiple(mappings, value, comparator, outcome):
    result = lab(ALT, value, "U/L", comparator=comparator, high=40)
    found = decide(mappings, "alt-2uln", result)
    check(found, outcome, str(value), [f"Observation/{result['id']}"])
    assert "2 x ULN" in found.reason


@pytest.mark.parametrize(("value", "outcome"), [(89, "met"), (90, "not-met"), (120, "not-met")])
def test_normal_limit_low_against_the_results_own_range(mappings, value, outcome):
    result = lab(C3_CODE, value, "mg/dL", low=90, high=180)
    found = decide(mappings, "c3-low", result)
    check(found, outcome, str(value), [f"Observation/{result['id']}"])
    assert "LLN 90" in found.reason and "x LLN" not in found.reason


def test_normal_limit_low_without_a_range_is_unknown(mappings):
    result = lab(C3_CODE, 50, "mg/dL")
    found = decide(mappings, "c3-low", result)
    check(found, "unknown", "50", [f"Observation/{result['id']}"])
    assert "no lower limit of normal" in found.reason


@pytest.mark.parametrize(("percent_day", "count_day", "outcome", "newest"), [
    (5, 20, "met", "percent"),        # the newer percentage (positive) decides
    (20, 5, "not-met", "count"),      # the newer count (zero) decides over an older positive
])
def test_positive_the_newest_of_several_concepts_decides(mappings, percent_day, count_day,
                                                         outcome, newest):
    percent = lab(CD19_PCT, 12, "%", day(percent_day))
    count = lab(CD19_ABS, 0, "/uL", day(count_day))
    found = decide(mappings, "cd19", percent, count)
    chosen = percent if newest == "percent" else count
    value = "12" if newest == "percent" else "0"
    check(found, outcome, value, [f"Observation/{chosen['id']}"])


@pytest.mark.parametrize(("value", "comparator", "outcome"), [
    (0, None, "not-met"), ("0.1", None, "met"), (0, ">", "met"), (1, "<", "unknown"),
    (0, "<", "not-met"), (0, "<=", "not-met"),
])
def test_positive_with_comparators(mappings, value, comparator, outcome):
    result = lab(CD19_PCT, value, "%", comparator=comparator)
    found = decide(mappings, "cd19", result)
    assert found.result == outcome, found.reason
    assert list(found.evidence) == [f"Observation/{result['id']}"]


def test_positive_without_any_value_is_unknown(mappings):
    found = decide(mappings, "cd19")
    check(found, "unknown", None, [])


@pytest.mark.parametrize(("value", "comparator", "outcome"), [
    ("0.5", None, "met"), ("0.49", None, "not-met"), ("0.5", "<", "not-met"),
    ("0.5", ">=", "met"), ("0.4", ">", "unknown"), ("0.6", "<", "unknown"),
])
def test_proteinuria_at_its_limit(mappings, value, comparator, outcome):
    result = lab(UPCR, value, "g/g", comparator=comparator)
    found = decide(mappings, "proteinuria", result)
    check(found, outcome, value, [f"Observation/{result['id']}"])


def test_proteinuria_the_newest_measure_of_either_kind_decides(mappings):
    older_upcr = lab(UPCR, "2.0", "g/g", day(30))
    newer_24h = lab(PROT_24H, "0.2", "g/(24.h)", day(3))
    found = decide(mappings, "proteinuria", older_upcr, newer_24h)
    check(found, "not-met", "0.2", [f"Observation/{newer_24h['id']}"])


@pytest.mark.parametrize(("value", "comparator", "outcome"), [
    (120, None, "met"), (121, None, "not-met"), (130, "<", "unknown"), (120, "<", "met"),
    (100, ">", "unknown"), (120, ">", "not-met"),
])
def test_uln_multiple_at_its_limit(mappings, value, comparator, outcome):
    result = lab(ALT, value, "U/L", comparator=comparator, high=40)
    found = decide(mappings, "alt-3uln", result)
    check(found, outcome, str(value), [f"Observation/{result['id']}"])
    assert found.uln is not None and found.uln.value == Decimal(40)


@pytest.mark.parametrize(("days_before", "outcome"), [(9, "met"), (10, "met"), (11, "unknown")])
def test_a_look_back_set_by_the_mapping(mappings, days_before, outcome):
    result = lab(NEUT, "2.0", "10*9/L", day(days_before))
    found = decide(mappings, "neutrophils-recent", result)
    assert found.result == outcome, found.reason
    if outcome == "met":
        check(found, "met", "2.0", [f"Observation/{result['id']}"])


def test_a_g_csf_recorded_without_a_date_leaves_the_washout_unknown(mappings):
    count = lab(NEUT, "2.0", "10*9/L", day(2))
    gcsf = med_statement("68442", status="active")
    found = decide(mappings, "neutrophils-washout", count, gcsf)
    check(found, "unknown", "2.0",
          [f"Observation/{count['id']}", f"MedicationStatement/{gcsf['id']}"])
    assert "without a date" in found.reason
