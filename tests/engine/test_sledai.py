"""SLEDAI-2K lab descriptors and the lower bound they give (pure)."""

from __future__ import annotations

from datetime import date

from service.engine import sledai

AS_OF = date(2026, 11, 15)


def _obs(code: str, value: float, unit: str, day: str = "2026-11-10", **extra) -> dict:
    return {"resourceType": "Observation", "id": f"{code}-{value}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "effectiveDateTime": day, "valueQuantity": {"value": value, "unit": unit, "code": unit},
            **extra}


def test_the_24_descriptors_and_their_weights_sum_to_105():
    assert len(sledai.DESCRIPTORS) == 24
    assert sum(d.weight for d in sledai.DESCRIPTORS) == 105  # terminology.md: 0-105
    assert {d.key for d in sledai.DESCRIPTORS if d.lab} == set(sledai.LAB_CODES)


def test_lab_items_give_a_lower_bound_with_each_part_named():
    low = {"referenceRange": [{"low": {"value": 90, "unit": "mg/dL"}}]}
    high = {"referenceRange": [{"high": {"value": 30, "unit": "[IU]/mL"}}]}
    resources = [
        _obs("2889-4", 1.2, "g/(24.h)"),                 # proteinuria 4
        _obs("4485-9", 60, "mg/dL", **low),              # low complement 2
        _obs("5130-0", 120, "[IU]/mL", **high),          # DNA binding 2
        _obs("777-3", 80, "10*3/uL"),                    # thrombocytopenia 1
        _obs("6690-2", 4.5, "10*9/L"),                   # no leukopenia
        _obs("8310-5", 38.5, "Cel"),                     # fever 1
    ]
    findings = sledai.lab_findings(resources, AS_OF)
    assert sledai.lower_bound(findings)[0] == 10
    assert sledai.lower_bound_reason(findings) == (
        "lab items alone score 10: proteinuria 4, low complement 2, increased dna binding 2, "
        "fever 1, thrombocytopenia 1")
    assert findings["proteinuria"].evidence == ("Observation/2889-4-1.2",)
    assert not findings["leukopenia"].present


def test_outside_the_window_unusable_or_unconvertible_results_do_not_count():
    resources = [
        _obs("2889-4", 1.2, "g/(24.h)", day="2026-10-01"),            # 45 days before
        _obs("2889-4", 1.2, "g/(24.h)", day="2026-11-20"),            # after the as-of date
        _obs("777-3", 20, "10*3/uL", status="entered-in-error"),
        _obs("6690-2", 1.0, "furlongs"),
        _obs("4485-9", 10, "mg/dL"),                                   # no reference range
    ]
    findings = sledai.lab_findings(resources, AS_OF)
    assert sledai.lower_bound(findings) == (0, [])
    assert sledai.lab_findings(resources, AS_OF, window_days=60)["proteinuria"].present


def test_units_are_converted_before_comparing():
    resources = [_obs("2889-4", 400, "mg/(24.h)"), _obs("777-3", 150000, "/uL"),
                 _obs("8310-5", 101.0, "[degF]")]
    findings = sledai.lab_findings(resources, AS_OF)
    assert not findings["proteinuria"].present       # 0.4 g/24 h
    assert not findings["thrombocytopenia"].present  # 150 x 10^9/L
    assert findings["fever"].present                 # 38.3 °C


def test_an_unknown_sledai_result_gets_the_lower_bound_and_stays_unknown():
    from service.engine.results import CriterionResult

    unknown = CriterionResult(id="sledai-2k", result="unknown", reason="No SLEDAI-2K score.")
    out = sledai.with_lab_lower_bound(unknown, [_obs("2889-4", 1.2, "g/(24.h)")], AS_OF)
    assert out.result == "unknown"
    assert "lab items alone score 4: proteinuria 4" in out.reason
    assert out.evidence == ("Observation/2889-4-1.2",)
