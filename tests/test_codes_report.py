"""The codes report: unmapped codes that look like our concepts, units we cannot convert."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.codes_report import build_report, format_report, read_codes
from service.mappings import load_mappings
from service.settings import REPO_ROOT

MAPPINGS = load_mappings(REPO_ROOT / "mappings")


def _obs(system: str, code: str, display: str | None = None, unit: str | None = None,
         text: str | None = None, **extra: Any) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    res: dict[str, Any] = {"resourceType": "Observation", "code": {"coding": [coding]}, **extra}
    if text:
        res["code"]["text"] = text
    if unit is not None:
        res["valueQuantity"] = {"value": 1, "unit": unit}
    return res


LOCAL = "http://hospital.example/lab"


@pytest.mark.parametrize("display,concept", [
    ("HGB", "hemoglobin"), ("Hemoglobin", "hemoglobin"), ("ALT (SGPT)", "alt"),
    ("AST/SGOT", "ast"), ("WBC", "wbc"), ("Creatinine(Serum)", "creatinine"),
    ("eGFR (CKD-EPI)", "egfr"), ("ANA titre", "ana-titer"), ("INR", "inr"),
    ("Bilirubin, Total", "bilirubin"), ("Absolute neutrophil count", "neutrophils"),
])
def test_unmapped_codes_that_look_like_a_concept_are_listed(display, concept):
    resources = [_obs(LOCAL, "X1", display)] * 3
    report = build_report(MAPPINGS, resources)
    assert [(u.concept, u.code, u.count) for u in report.unmapped] == [(concept, "X1", 3)]


def test_mapped_codes_and_unrelated_codes_are_not_listed():
    report = build_report(MAPPINGS, [
        _obs("http://loinc.org", "718-7", "Hemoglobin", "g/dL"),
        _obs(LOCAL, "Z9", "Salt intake"),          # "alt" inside a word is not ALT
        _obs(LOCAL, "Z8", "Potassium"),
    ])
    assert report.unmapped == []
    assert report.other_unmapped == 2
    assert report.read == {"Observation": 3}


def test_units_that_do_not_convert_are_counted_per_concept():
    report = build_report(MAPPINGS, [
        _obs("http://loinc.org", "718-7", unit="g/dL"),
        _obs("http://loinc.org", "718-7", unit="K/uL"),      # converts? no: a count, not mass
        _obs("http://loinc.org", "718-7", unit="K/uL"),
        _obs("http://loinc.org", "6690-2", unit="thou/uL"),  # synonym: fine
        _obs("http://loinc.org", "6690-2", unit="cells/hpf"),
        _obs("http://loinc.org", "1742-6"),                  # no quantity: nothing to say
    ])
    got = {(u.concept, u.unit): u.count for u in report.units}
    assert got == {("hemoglobin", "K/uL"): 2, ("wbc", "cells/hpf"): 1}


def test_conditions_procedures_and_medications_are_read_too():
    report = build_report(MAPPINGS, [
        {"resourceType": "Condition", "code": {"text": "Systemic lupus erythematosus"}},
        {"resourceType": "Condition", "code": {"coding": [
            {"system": "http://hospital.example/dx", "code": "L1", "display": "Lupus nephritis"}]}},
        {"resourceType": "Procedure", "code": {"coding": [
            {"system": "http://hospital.example/px", "code": "P1", "display": "Renal biopsy"}]}},
        {"resourceType": "MedicationRequest", "medicationCodeableConcept": {"coding": [
            {"system": "http://hospital.example/rx", "code": "M1",
             "display": "Mycophenolate mofetil 500 mg tab"}]}},
    ])
    assert sorted((u.resource_type, u.concept) for u in report.unmapped) == [
        ("Condition", "lupus-nephritis"), ("Condition", "sle"),
        ("MedicationRequest", "mycophenolate-mofetil"), ("Procedure", "kidney-biopsy")]


def test_the_report_holds_no_patient_data():
    resources = [_obs(LOCAL, "X1", "HGB", "g/dl", id="secret-id",
                      subject={"reference": "Patient/p-123"}, effectiveDateTime="2026-01-02",
                      valueString="John Smith")]
    text = json.dumps(build_report(MAPPINGS, resources).to_json()) + format_report(
        build_report(MAPPINGS, resources))
    for leaked in ("secret-id", "p-123", "2026-01-02", "John"):
        assert leaked not in text


class _FakeClient:
    """A client whose search pages forever: the report must stop at its bound."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    def search(self, resource_type: str, params: Any = None):
        self.params.append((resource_type, params))
        n = 0
        while True:
            n += 1
            yield {"resourceType": resource_type, "id": str(n), "subject": {"reference": "P/1"},
                   "code": {"coding": [{"system": LOCAL, "code": "X"}]}}


def test_reading_is_bounded_and_asks_only_for_code_elements():
    client = _FakeClient()
    cut: list[str] = []
    got = list(read_codes(client, page_size=50, max_per_type=10, on_truncated=cut.append))
    assert len(got) == 10 * 7 and len(cut) == 7
    assert all(set(r) <= {"resourceType", "code", "medicationCodeableConcept", "valueQuantity"}
               for r in got)
    for _, params in client.params:
        elements = dict(params)["_elements"]
        assert "subject" not in elements and "effective" not in elements
        assert dict(params)["_count"] == "50"
