"""The conformance study (docs/writing-a-study.md), from mapping files alone: every criterion at
its boundaries, with synthetic records built here from the spec's codes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from service.core.settings import REPO_ROOT
from service.engine.evaluate import evaluate_patient
from service.engine.results import CriterionResult
from service.mappings import Mappings, load_mappings
from tests.support.builders import (
    AS_OF,
    ICD10CM,
    LOINC,
    RX_AZA,
    RX_CYC,
    RX_MMF,
    SCT_DRUG_LUPUS,
    SCT_SLE,
    SUBJECT,
    birth_for,
    cc,
    condition,
    confirmation,
    consent,
    day,
    med_admin,
    med_request,
    med_statement,
    obs,
    patient,
    procedure,
    quantity,
    sledai,
)

KEY = "lupus-conformance"
CVX = "http://hl7.org/fhir/sid/cvx"
CPT = "http://www.ama-assn.org/go/cpt"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
RX_RITUXIMAB = "121191"
POSITIVE, NEGATIVE = cc("LA6576-8", LOINC), cc("LA6577-6", LOINC)


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings(f"{REPO_ROOT / 'mappings'}:{REPO_ROOT / 'mappings' / 'conformance'}")


Check = Callable[..., CriterionResult]


@pytest.fixture(scope="module")
def check(mappings: Mappings) -> Check:
    """check(cid, *resources, gender=..., birth=..., as_of=..., research_studies=...)."""
    def run(cid: str, *resources: dict[str, Any], gender: str | None = "female",
            birth: str | None = None, as_of: date = AS_OF,
            research_studies: dict[str, str] | None = None) -> CriterionResult:
        record = [patient(birth or birth_for(30), gender), *resources]
        evaluation = evaluate_patient(record, mappings, as_of, [KEY], strict=True,
                                      research_studies=research_studies)
        [found] = [c for c in evaluation.studies[0].criteria if c.id == cid]
        assert found.reason.strip(), found
        refs = {f"{r['resourceType']}/{r.get('id')}" for r in record}
        assert set(found.evidence) <= refs, found.evidence
        return found
    return run


def test_the_study_loads_from_its_folder_only_when_named(mappings):
    assert KEY in mappings.studies
    assert KEY not in load_mappings(REPO_ROOT / "mappings").studies
    study = mappings.studies[KEY]
    assert study.title == "Lupus eligibility conformance protocol (not a trial)"
    assert study.registry_id is None
    assert [c.id for c in study.criteria if c.type == "inclusion"] == [
        "age", "sle-diagnosis", "serology", "sledai-2k", "maintenance-therapy",
        "cyclophosphamide-cumulative", "platelets", "alt", "bilirubin-absolute",
        "contraception", "consent"]
    assert [c.id for c in study.criteria if c.type == "exclusion"] == [
        "kidney-transplant", "hiv", "hbv-active", "live-vaccine", "plasmapheresis-recent",
        "b-cell-therapy-recent", "prior-car-t", "other-trial"]


def test_every_result_carries_its_type(check):
    assert check("age").type == "inclusion"
    assert check("hiv").type == "exclusion"
    assert check("hiv").to_json()["type"] == "exclusion"


# ------------------------------------------------------------------ inclusion

@pytest.mark.parametrize(("years", "extra", "expected"), [
    (11, 364, "not-met"), (12, 0, "met"), (65, 364, "met"), (66, 0, "not-met"),
])
def test_age(check, years, extra, expected):
    assert check("age", birth=birth_for(years, extra)).result == expected


@pytest.mark.parametrize(("resources", "expected"), [
    ([condition(SCT_SLE)], "met"),
    ([condition("M32.14", ICD10CM)], "met"),
    ([condition(SCT_DRUG_LUPUS)], "not-met"),
    ([], "not-met"),
])
def test_sle_diagnosis(check, resources, expected):
    assert check("sle-diagnosis", *resources).result == expected


def _lab(code: str, value: float, unit: str, *, low: float | None = None,
         high: float | None = None, when: str | None = None) -> dict[str, Any]:
    res = obs(code, value, unit, when)
    ranges = {k: quantity(v, unit) for k, v in (("low", low), ("high", high)) if v is not None}
    if ranges:
        res["referenceRange"] = [ranges]
    return res


DSDNA, C3, C4 = "5130-0", "4485-9", "4498-2"


@pytest.mark.parametrize(("resources", "expected", "decided_by"), [
    # anti-dsDNA: a coded positive answer, or a value above its referenceRange.high.
    ([obs(DSDNA, value_concept=POSITIVE)], "met", "anti-dsDNA positive"),
    ([_lab(DSDNA, 10.1, "[IU]/mL", high=10), _lab(C3, 90, "mg/dL", low=90),
      _lab(C4, 10, "mg/dL", low=10)], "met", "anti-dsDNA positive"),
    ([_lab(DSDNA, 10, "[IU]/mL", high=10), _lab(C3, 90, "mg/dL", low=90),
      _lab(C4, 10, "mg/dL", low=10)], "not-met", None),
    # 32677-7: anti-dsDNA by immunoassay, an equivalent code (concepts.toml).
    ([_lab("32677-7", 10.1, "[IU]/mL", high=10), _lab(C3, 90, "mg/dL", low=90),
      _lab(C4, 10, "mg/dL", low=10)], "met", "anti-dsDNA positive"),
    # C3 / C4 strictly below their own referenceRange.low (g/L converted to mg/dL).
    ([obs(DSDNA, value_concept=NEGATIVE), _lab(C3, 89.9, "mg/dL", low=90)], "met",
     "C3 below normal"),
    ([obs(DSDNA, value_concept=NEGATIVE), _lab(C3, 0.9, "g/L", low=0.9),
      _lab(C4, 0.09, "g/L", low=0.1)], "met", "C4 below normal"),
    # One part not decided (C4 missing) and none met: unknown, not not-met.
    ([obs(DSDNA, value_concept=NEGATIVE), _lab(C3, 90, "mg/dL", low=90)], "unknown", "C4"),
    # A C3 without a lower limit cannot be judged below normal.
    ([obs(DSDNA, value_concept=NEGATIVE), _lab(C3, 50, "mg/dL"),
      _lab(C4, 10, "mg/dL", low=10)], "unknown", "C3"),
    ([], "unknown", None),
])
def test_serology_any_of_names_the_part_that_decided(check, resources, expected, decided_by):
    found = check("serology", *resources)
    assert found.result == expected, found.reason
    if decided_by:
        assert decided_by in found.reason


@pytest.mark.parametrize(("score", "expected"), [(7, "not-met"), (8, "met"), (None, "unknown")])
def test_sledai(check, score, expected):
    resources = [sledai(score)] if score is not None else []
    assert check("sledai-2k", *resources).result == expected


def _weight(kg: float, days_before: int = 10) -> dict[str, Any]:
    return obs("29463-7", kg, "kg", day(days_before))


def _ranged(statement: dict[str, Any], low: float, high: float) -> dict[str, Any]:
    """The statement with a once-daily doseRange of low-high mg."""
    dose_range = {"low": quantity(low, "mg"), "high": quantity(high, "mg")}
    timing = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
    return statement | {"dosage": [{"timing": timing, "doseAndRate": [{"doseRange": dose_range}]}]}


def _twice_or_thrice(mg: float) -> dict[str, Any]:
    """A Dosage of `mg` two to three times a day (frequencyMax)."""
    repeat = {"frequency": 2, "frequencyMax": 3, "period": 1, "periodUnit": "d"}
    return {"timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": quantity(mg, "mg")}]}


@pytest.mark.parametrize(("resources", "expected"), [
    # Mycophenolate mofetil >= 1500 mg/day for >= 90 days inside the last 365 days.
    ([med_statement(RX_MMF, day(100), day(10), dose=(750, "mg"), frequency=2)], "met"),
    ([med_statement(RX_MMF, day(100), day(10), dose=(1499, "mg"))], "not-met"),
    ([med_statement(RX_MMF, day(99), day(10), dose=(1500, "mg"))], "not-met"),  # 89 days
    # Only the days inside the window count: 91 days in total, 89 of them in the window.
    ([med_statement(RX_MMF, day(456), day(365 - 89), dose=(1500, "mg"))], "not-met"),
    ([med_statement(RX_MMF, day(455), day(365 - 90), dose=(1500, "mg"))], "met"),
    # Azathioprine >= 1.5 mg/kg/day with a body weight from the last 365 days.
    ([med_statement(RX_AZA, day(100), day(10), dose=(90, "mg")), _weight(60)], "met"),
    ([med_statement(RX_AZA, day(100), day(10), dose=(89, "mg")), _weight(60)], "not-met"),
    ([med_statement(RX_AZA, day(100), day(10), dose=(90, "mg")), _weight(60, 366)],
     "unknown"),
    ([med_statement(RX_AZA, day(100), day(10), dose=(1.5, "mg/kg"))], "met"),
    # A dose or frequency range decides only when every dose it allows gives the same answer
    # (docs/decisions.md); a range across the threshold is unknown, never met or not-met.
    ([_ranged(med_statement(RX_MMF, day(100), day(10)), 1500, 2000)], "met"),
    ([_ranged(med_statement(RX_MMF, day(100), day(10)), 500, 1000)], "not-met"),
    ([_ranged(med_statement(RX_MMF, day(100), day(10)), 1000, 2000)], "unknown"),
    ([med_statement(RX_MMF, day(100), day(10), dose=(750, "mg"), frequency=2)
      | {"dosage": [_twice_or_thrice(750)]}], "met"),
    ([med_statement(RX_MMF, day(100), day(10))
      | {"dosage": [_twice_or_thrice(500)]}], "unknown"),          # 1000-1500 mg/day
    ([_ranged(med_statement(RX_AZA, day(100), day(10)), 90, 120), _weight(60)], "met"),
    ([_ranged(med_statement(RX_AZA, day(100), day(10)), 60, 120), _weight(60)], "unknown"),
    ([_ranged(med_statement(RX_AZA, day(100), day(10)), 30, 60), _weight(60)], "not-met"),
    # A dose that cannot be read: unknown, never met or not-met.
    ([med_statement(RX_MMF, day(100), day(10))], "unknown"),
    ([], "unknown"),   # no medication history at all
])
def test_maintenance_therapy(check, resources, expected):
    assert check("maintenance-therapy", *resources).result == expected


@pytest.mark.parametrize(("resources", "expected"), [
    ([med_admin(RX_CYC, day(d), dose=(500, "mg")) for d in (30, 60, 90)], "met"),
    ([med_admin(RX_CYC, day(30), dose=(1.5, "g"))], "met"),
    ([med_admin(RX_CYC, day(30), dose=(1499, "mg"))], "not-met"),
    ([med_admin(RX_CYC, day(365), dose=(1500, "mg"))], "met"),        # 365 days: inside
    ([med_admin(RX_CYC, day(366), dose=(1500, "mg"))], "not-met"),    # 366 days: outside
    ([med_admin(RX_CYC, day(30), dose=(1000, "mg")), med_admin(RX_CYC, day(20))], "unknown"),
    # An order without administrations cannot show a dose given.
    ([med_request(RX_CYC, day(60), day(30), dose=(500, "mg"))], "unknown"),
    ([], "not-met"),
])
def test_cyclophosphamide_cumulative(check, resources, expected):
    assert check("cyclophosphamide-cumulative", *resources).result == expected


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (30, "10*9/L", "met"), (29.9, "10*9/L", "not-met"), (30, "10*3/uL", "met"),
    (29999, "/uL", "not-met"), (None, None, "unknown"),
])
def test_platelets(check, value, unit, expected):
    resources = [obs("777-3", value, unit)] if value is not None else []
    assert check("platelets", *resources).result == expected


@pytest.mark.parametrize(("value", "expected"), [(80, "met"), (80.1, "not-met")])
def test_alt_against_its_own_uln(check, value, expected):
    assert check("alt", obs("1742-6", value, "U/L", ref_high=40)).result == expected


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (2.0, "mg/dL", "met"), (2.1, "mg/dL", "not-met"), (34.2, "umol/L", "met"),
    (35, "umol/L", "not-met"),
])
def test_bilirubin_absolute_limit(check, value, unit, expected):
    assert check("bilirubin-absolute", obs("1975-2", value, unit)).result == expected


def _focused(resource: dict[str, Any], focus: dict[str, Any]) -> dict[str, Any]:
    return {**resource, "focus": [focus]}


STUDY_FOCUS = {"identifier": {"system": "urn:trial-eligibility:study", "value": KEY}}


@pytest.mark.parametrize(("gender", "resources", "expected"), [
    ("male", [], "met"),                                          # not applicable
    ("female", [], "unknown"),
    ("female", [_focused(confirmation("contraception"), STUDY_FOCUS)], "met"),
    ("female", [_focused(confirmation("contraception", False), STUDY_FOCUS)], "not-met"),
    # Per study: a confirmation naming no study, or another study, does not count.
    ("female", [confirmation("contraception")], "unknown"),
    ("female", [_focused(confirmation("contraception"), {
        "identifier": {"system": "urn:trial-eligibility:study", "value": "pediatric-ln-cart"}})],
     "unknown"),
    ("female", [_focused(confirmation("contraception"),
                         {"reference": "ResearchStudy/rs-conf"})], "met"),
    ("female", [_focused(confirmation("contraception"),
                         {"reference": "ResearchStudy/rs-other"})], "unknown"),
    (None, [], "unknown"),                                        # sex unknown: it may apply
])
def test_contraception_is_per_study_and_for_females_only(check, gender, resources, expected):
    found = check("contraception", *resources, gender=gender,
                  research_studies={KEY: "ResearchStudy/rs-conf",
                                    "pediatric-ln-cart": "ResearchStudy/rs-other"})
    assert found.result == expected, found.reason
    if gender == "male":
        assert found.reason.startswith("Not applicable")


def test_consent(check):
    assert check("consent", consent(KEY)).result == "met"
    assert check("consent", consent("pediatric-ln-cart")).result == "unknown"
    assert check("consent").result == "unknown"


# ------------------------------------------------------------------ exclusion (met = not excluded)

def _immunization(code: str, when: str, status: str = "completed") -> dict[str, Any]:
    return {"resourceType": "Immunization", "id": f"imm-{code}-{when}", "status": status,
            "patient": SUBJECT, "vaccineCode": cc(code, CVX), "occurrenceDateTime": when}


@pytest.mark.parametrize(("resources", "expected"), [
    ([], "met"),
    ([procedure("70536003", day(4000))], "not-met"),
    ([condition("Z94.0", ICD10CM, clinical="inactive")], "not-met"),
    ([procedure("70536003", day(10), status="not-done")], "met"),
])
def test_kidney_transplant(check, resources, expected):
    found = check("kidney-transplant", *resources)
    assert found.result == expected
    if expected == "met":
        assert found.reason.startswith("Not excluded") and "kidney transplant" in found.reason


@pytest.mark.parametrize(("resources", "expected"), [
    ([], "met"),
    ([condition("B20", ICD10CM)], "not-met"),
    ([condition("86406008")], "not-met"),
    # A provisional diagnosis alone does not prove it, nor rule it out (docs/decisions.md).
    ([condition("86406008", verification="provisional")], "unknown"),
    ([obs("75622-1", value_concept=POSITIVE, date=day(3000))], "not-met"),   # ever
    ([obs("75622-1", value_concept=NEGATIVE, date=day(3000))], "met"),
    ([obs("75622-1", value_string="see report", date=day(30))], "unknown"),
])
def test_hiv(check, resources, expected):
    assert check("hiv", *resources).result == expected


def _interpreted(code: str, interpretation: str, when: str) -> dict[str, Any]:
    res = obs("5196-1", date=when)
    res["interpretation"] = [cc(code and interpretation, INTERPRETATION)]
    return res


@pytest.mark.parametrize(("resources", "expected"), [
    ([], "unknown"),                                                        # test required
    ([obs("5196-1", value_concept=NEGATIVE, date=day(365))], "met"),
    ([obs("5196-1", value_concept=POSITIVE, date=day(365))], "not-met"),
    ([obs("5196-1", value_concept=POSITIVE, date=day(366))], "unknown"),    # too old
    ([obs("5196-1", value_concept=cc("10828004"), date=day(10))], "not-met"),
    ([_interpreted("x", "NEG", day(10))], "met"),
    ([_interpreted("x", "POS", day(10))], "not-met"),
])
def test_hbv_active(check, resources, expected):
    assert check("hbv-active", *resources).result == expected


@pytest.mark.parametrize(("resources", "expected"), [
    ([], "met"),
    ([_immunization("03", day(28))], "not-met"),
    ([_immunization("03", day(29))], "met"),
    ([_immunization("121", day(1))], "not-met"),
    ([_immunization("03", day(5), status="not-done")], "met"),
    ([_immunization("141", day(5))], "met"),          # influenza, inactivated: not live
])
def test_live_vaccine(check, resources, expected):
    assert check("live-vaccine", *resources).result == expected


def _plasmapheresis(when: str) -> dict[str, Any]:
    res = procedure("36514", when)
    res["code"] = cc("36514", CPT)
    return res


@pytest.mark.parametrize(("resources", "expected"), [
    ([], "met"), ([_plasmapheresis(day(90))], "not-met"), ([_plasmapheresis(day(91))], "met"),
])
def test_plasmapheresis_recent(check, resources, expected):
    assert check("plasmapheresis-recent", *resources).result == expected


@pytest.mark.parametrize(("resources", "expected"), [
    ([], "met"),
    ([med_statement(RX_RITUXIMAB, day(400), day(180))], "not-met"),   # overlaps the window
    ([med_statement(RX_RITUXIMAB, day(400), day(181))], "met"),
    ([med_admin(RX_RITUXIMAB, day(180), dose=(1000, "mg"))], "not-met"),
    ([med_statement(RX_RITUXIMAB, day(30), status="active")], "not-met"),   # ongoing
    # Started before the window with an unknown end: it may reach into it.
    ([med_statement(RX_RITUXIMAB, day(400), status="completed")], "unknown"),
])
def test_b_cell_therapy_recent(check, resources, expected):
    assert check("b-cell-therapy-recent", *resources).result == expected


@pytest.mark.parametrize(("resources", "expected"), [
    ([], "met"), ([condition("Z92.850", ICD10CM, clinical="resolved")], "not-met"),
])
def test_prior_car_t(check, resources, expected):
    assert check("prior-car-t", *resources).result == expected


def _subject(study: str, status: str, identifier: str | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "ResearchSubject", "id": f"rs-{study}-{status}",
                           "status": status, "individual": SUBJECT,
                           "study": {"reference": f"ResearchStudy/{study}"}}
    if identifier:
        res["identifier"] = [{"system": "urn:trial-eligibility:research-subject",
                              "value": identifier}]
    return res


@pytest.mark.parametrize(("resources", "expected"), [
    ([], "met"),
    ([_subject("other", "on-study")], "not-met"),
    ([_subject("other", "on-study-intervention")], "not-met"),
    ([_subject("other", "on-study-observation")], "not-met"),
    ([_subject("other", "candidate")], "met"),
    ([_subject("other", "off-study")], "met"),
    # This study's own ResearchSubject is not "another study".
    ([_subject("this", "on-study", f"{KEY}/p1")], "met"),
    ([_subject("rs-conf", "on-study")], "met"),
])
def test_other_trial(check, resources, expected):
    found = check("other-trial", *resources, research_studies={KEY: "ResearchStudy/rs-conf"})
    assert found.result == expected, found.reason


def test_a_fully_eligible_record_is_eligible(mappings):
    record = [
        patient(birth_for(30), "female"), condition(SCT_SLE),
        obs(DSDNA, value_concept=POSITIVE), sledai(10),
        med_statement(RX_MMF, day(200), day(5), dose=(1000, "mg"), frequency=2),
        *[med_admin(RX_CYC, day(d), dose=(750, "mg")) for d in (40, 70)],
        obs("777-3", 150, "10*9/L"), obs("1742-6", 30, "U/L", ref_high=40),
        obs("1975-2", 0.8, "mg/dL"), obs("5196-1", value_concept=NEGATIVE),
        _focused(confirmation("contraception"), STUDY_FOCUS), consent(KEY),
    ]
    [study] = evaluate_patient(record, mappings, AS_OF, [KEY], strict=True).studies
    assert {c.id: c.result for c in study.criteria if c.result != "met"} == {}
    assert study.status == "eligible"
