"""Records as hospitals send them, round 3 (docs/decisions.md): one table test per shape.

Each table row is a record variant and the result docs/decisions.md decides for it; every
evaluation also goes through the invariant checks of conftest.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.panels import component_view
from tests.engine.test_records_shapes import background
from tests.support.builders import (
    HB,
    LN,
    LYMPH,
    NEUT,
    RX_CYC,
    RX_MMF,
    RX_PREDNISONE,
    RX_TAC,
    SCT_CLASS_III,
    SCT_CLASS_IV,
    SCT_CLASS_V,
    SCT_KIDNEY_BIOPSY,
    SCT_SLE,
    SLE,
    UCUM,
    WBC,
    WEIGHT,
    birth_for,
    cc,
    condition,
    day,
    diagnostic_report,
    med_admin,
    med_statement,
    obs,
    patient,
    procedure,
    quantity,
)

P = patient(birth_for(12, 40), "female")
BOY = patient(birth_for(10, 30), "male")
W40 = obs(WEIGHT, 40, "kg", day(20))
SCT_CLASS_I, SCT_CLASS_II, SCT_CLASS_VI = "73286009", "4676006", "11013005"
LOCAL_FREQ = "http://hospital.example/frequency"


def text_condition(text: str, cid: str | None = None) -> dict[str, Any]:
    """A Condition recorded as text only (no coding)."""
    res = condition(SCT_SLE, cid=cid)
    res["code"] = {"text": text}
    return res


# --------------------------------------------------------------------------- text-only diagnoses
# "A diagnosis recorded as text only ... is unknown for every criterion that reads diagnoses
# (sle-diagnosis, ln-biopsy, exclusions), never not-met."

TEXT_ONLY = [
    ("SLE written out", SLE, "sle-diagnosis", ["Systemic lupus erythematosus"], True),
    ("LN class IV as text, biopsy in window", LN, "ln-biopsy",
     ["Lupus nephritis class IV (ISN/RPS 2018)"], True),
    ("LN as text, no biopsy", LN, "ln-biopsy", ["Lupus nephritis"], False),
    ("LN as text beside coded SLE", LN, "ln-biopsy", ["lupus glomerulonephritis, class III"],
     True),
]


@pytest.mark.parametrize("key,cid,texts,biopsy", [r[1:] for r in TEXT_ONLY],
                         ids=[r[0] for r in TEXT_ONLY])
def test_a_diagnosis_as_text_only_is_unknown(crit, key, cid, texts, biopsy):
    res = [BOY, *[text_condition(t) for t in texts]]
    if cid == "ln-biopsy":
        res.append(condition(SCT_SLE))
    if biopsy:
        res.append(procedure(SCT_KIDNEY_BIOPSY, day(30)))
    r = crit(res, key, cid)
    assert r.result == "unknown", r.reason
    assert "text only" in r.reason


@pytest.mark.parametrize(("code", "how"), [
    ({"text": "SLE"}, "recorded as text only"),
    ({"text": "SLE", "coding": [{"system": "http://hospital.example/dx", "code": "L-77"}]},
     "recorded under a code the mappings do not know"),
    # A coding without a code is no code: text only.
    ({"text": "SLE", "coding": [{"system": "http://hospital.example/dx"}]},
     "recorded as text only"),
], ids=["text", "unmapped-code", "coding-without-code"])
def test_the_reason_says_how_an_uncoded_diagnosis_is_recorded(crit, code, how):
    res = condition(SCT_SLE, cid="sle-words")
    res["code"] = code
    r = crit([BOY, res], SLE, "sle-diagnosis")
    assert (r.result, r.evidence) == ("unknown", ("Condition/sle-words",))
    assert r.reason == (f"SLE is {how} (Condition/sle-words): it is not missing, but a coded "
                        "diagnosis or a person's review is needed; no 2019 EULAR/ACR "
                        "classification is recorded; the laboratory and biopsy items alone "
                        "reach 0 of the 10 2019 EULAR/ACR points (entry criterion ANA >= 1:80 "
                        "not shown).")


def test_text_only_exclusion_is_unknown_not_met(mappings):
    """An exclusion (event rule) reading a diagnosis written as text: not `met` ("absent")."""
    from pathlib import Path

    from service.engine.evaluate import evaluate_patient
    from service.mappings import load_mappings
    from tests.support.builders import AS_OF
    root = Path(__file__).resolve().parents[2] / "mappings"
    both = load_mappings(f"{root}:{root / 'conformance'}")
    record = [patient(birth_for(30), "female"), text_condition("HIV infection", cid="hivtext")]
    result = evaluate_patient(record, both, AS_OF, ["lupus-conformance"], strict=True)
    [hiv] = [c for c in result.studies[0].criteria if c.id == "hiv"]
    assert hiv.result == "unknown", hiv.reason
    assert "Condition/hivtext" in hiv.evidence


# --------------------------------------------------------------------------- LN class
# "Lupus nephritis whose most recent recorded class is II, V alone or VI is not-met for
# ln-biopsy (the class is known and is not III or IV)."

LN_CLASSES = [
    ("class II", [(SCT_CLASS_II, 60)], "not-met"),
    ("class V alone", [(SCT_CLASS_V, 60)], "not-met"),
    ("class VI", [(SCT_CLASS_VI, 60)], "not-met"),
    ("class I", [(SCT_CLASS_I, 60)], "not-met"),
    ("class IV + V on one date", [(SCT_CLASS_IV, 60), (SCT_CLASS_V, 60)], "met"),
    ("class III then class II later", [(SCT_CLASS_III, 400), (SCT_CLASS_II, 60)], "not-met"),
    ("class V then class IV later", [(SCT_CLASS_V, 400), (SCT_CLASS_IV, 60)], "met"),
    ("class IV, undated class V", [(SCT_CLASS_IV, 60), (SCT_CLASS_V, None)], "met"),
]


@pytest.mark.parametrize("classes,expected", [r[1:] for r in LN_CLASSES],
                         ids=[r[0] for r in LN_CLASSES])
def test_most_recent_ln_class(crit, classes, expected):
    res = [BOY, condition(SCT_SLE), procedure(SCT_KIDNEY_BIOPSY, day(60))]
    res += [condition(code, onset=day(d) if d is not None else None) for code, d in classes]
    r = crit(res, LN, "ln-biopsy")
    assert r.result == expected, r.reason
    if expected == "not-met":
        assert "most recent lupus nephritis class" in r.reason


def test_class_v_alone_in_a_pathology_report_is_not_met(crit):
    report = diagnostic_report(when=day(40), conclusion=[SCT_CLASS_V])
    r = crit([BOY, condition(SCT_SLE), report], LN, "ln-biopsy")
    assert r.result == "not-met", r.reason
    assert f"DiagnosticReport/{report['id']}" in r.evidence


# --------------------------------------------------------------------------- panel components
# "A result sent inside a panel ... counts like an Observation of that code, with the panel's
# date and status."

def cbc(values: dict[str, tuple[float, str]], when: str, status: str = "final",
        oid: str = "cbc1") -> dict[str, Any]:
    panel = obs("58410-2", date=when, status=status, oid=oid)
    panel["component"] = [{"code": cc(code, "http://loinc.org"),
                           "valueQuantity": quantity(v, u)} for code, (v, u) in values.items()]
    return panel


FULL = {WBC: (5.2, "10*3/uL"), NEUT: (3.1, "10*3/uL"), LYMPH: (1.5, "10*3/uL"),
        HB: (11.5, "g/dL")}
PANELS = [
    ("all four met", FULL, day(5), "final",
     {"wbc": "met", "neutrophils": "met", "lymphocytes": "met", "hemoglobin": "met"}),
    ("low WBC in the panel", {**FULL, WBC: (2.1, "10*3/uL")}, day(5), "final",
     {"wbc": "not-met", "neutrophils": "met"}),
    ("haemoglobin in g/L", {**FULL, HB: (55, "g/L")}, day(5), "final", {"hemoglobin": "not-met"}),
    ("preliminary panel", FULL, day(5), "preliminary", {"wbc": "unknown"}),
    ("stale panel", FULL, day(200), "final", {"wbc": "unknown", "lymphocytes": "unknown"}),
]


@pytest.mark.parametrize("values,when,status,expected", [r[1:] for r in PANELS],
                         ids=[r[0] for r in PANELS])
def test_results_sent_as_panel_components(crit, values, when, status, expected):
    res = [BOY, cbc(values, when, status)]
    for cid, result in expected.items():
        r = crit(res, LN, cid)
        assert r.result == result, (cid, r.reason)
        if result != "unknown":
            assert list(r.evidence) == ["Observation/cbc1"], r.evidence


def test_the_panels_own_code_and_a_component_both_count(crit):
    panel = cbc({LYMPH: (1.5, "10*3/uL")}, day(5))
    panel["code"] = cc(WBC, "http://loinc.org")
    panel["valueQuantity"] = quantity(4.0, "10*3/uL")
    assert crit([BOY, panel], LN, "wbc").result == "met"
    assert crit([BOY, panel], LN, "lymphocytes").result == "met"


def test_a_component_is_read_with_the_panels_frame_and_its_own_result():
    # What a component inherits from the panel and what it must not (the panel's own code,
    # result, interpretation, range or absent-data reason would be read as the component's).
    panel = {
        "resourceType": "Observation", "id": "cbc9", "status": "final",
        "effectiveDateTime": "2026-11-10", "issued": "2026-11-11T08:00:00Z",
        "subject": {"reference": "Patient/p1"}, "extension": [{"url": "urn:x"}],
        "code": cc("58410-2", "http://loinc.org"), "component": [],
        "interpretation": [cc("H")], "referenceRange": [{"high": quantity(9, "g/L")}],
        "dataAbsentReason": cc("unknown"), "valueQuantity": quantity(1, "g/L"),
        "valueString": "panel text", "note": [{"text": "panel note"}],
    }
    component = {"code": cc(HB, "http://loinc.org"), "valueQuantity": quantity(11.5, "g/dL"),
                 "interpretation": [cc("N")], "extension": [{"url": "urn:component"}]}
    assert component_view(panel, component) == {
        "resourceType": "Observation", "id": "cbc9", "status": "final",
        "effectiveDateTime": "2026-11-10", "issued": "2026-11-11T08:00:00Z",
        "subject": {"reference": "Patient/p1"}, "extension": [{"url": "urn:x"}],
        "note": [{"text": "panel note"}],
        "code": cc(HB, "http://loinc.org"), "valueQuantity": quantity(11.5, "g/dL"),
        "interpretation": [cc("N")],
    }
    # A component without a result of its own does not take the panel's.
    bare = component_view(panel, {"code": cc(HB)})
    assert not {"valueQuantity", "valueString", "referenceRange", "interpretation",
                "dataAbsentReason", "component"} & set(bare)
    # Nor, without a code, the panel's code.
    assert "code" not in component_view(panel, {})


# --------------------------------------------------------------------------- administrations
# "Medication administrations of one agent no more than 35 days apart form one course, from
# the first administration to the last (monthly pulses included)." The gap is kept in the
# mappings per agent or route.

def pulses(code: str, first: int, every: int, count: int, mg: float = 500
           ) -> list[dict[str, Any]]:
    """`count` administrations, the first `first` days before as-of, every `every` days."""
    return [med_admin(code, day(first - i * every), dose=(mg, "mg")) for i in range(count)]


MMF_YEAR = med_statement(RX_MMF, day(400), day(10), dose=(600, "mg"))
ADMIN_TABLE = [
    ("monthly cyclophosphamide for 7 months + MMF", pulses(RX_CYC, 230, 30, 8), "met"),
    ("cyclophosphamide every 35 days (the limit)", pulses(RX_CYC, 250, 35, 7), "met"),
    # Each pulse is then a course of its own: a single date, an unknown duration.
    ("cyclophosphamide every 40 days: separate courses", pulses(RX_CYC, 250, 40, 6),
     "unknown"),
    ("monthly, but only 5 months", pulses(RX_CYC, 150, 30, 6), "not-met"),
    ("a single pulse: duration unknown", pulses(RX_CYC, 230, 30, 1), "unknown"),
    ("tacrolimus given daily for 200 days (weekly records)", pulses(RX_TAC, 200, 7, 29, 2),
     "met"),
]


@pytest.mark.parametrize("admins,expected", [r[1:] for r in ADMIN_TABLE],
                         ids=[r[0] for r in ADMIN_TABLE])
def test_administration_series_form_courses(crit, admins, expected):
    r = crit([BOY, MMF_YEAR, *admins], LN, "refractory-ln")
    assert r.result == expected, r.reason


def test_infusions_recorded_with_a_period_form_a_series_too(crit):
    """Monthly 2-hour cyclophosphamide infusions (effectivePeriod within the day)."""
    infusions = []
    for i in range(8):
        when = day(230 - i * 30)
        infusions.append(med_admin(RX_CYC, start=f"{when}T09:00:00Z", end=f"{when}T11:00:00Z",
                                   dose=(500, "mg")))
    r = crit([BOY, MMF_YEAR, *infusions], LN, "refractory-ln")
    assert r.result == "met", r.reason


def test_administrations_with_a_period_join_at_the_administration_gap(crit):
    """Cyclosporine (no agent gap of its own) given within a day every 20 days for 200 days:
    administrations up to 35 days apart are one course, even when each has a period."""
    given = [med_admin("3008", start=f"{day(210 - i * 20)}T08:00:00Z",
                       end=f"{day(210 - i * 20)}T09:00:00Z", dose=(100, "mg"))
             for i in range(11)]
    r = crit([BOY, MMF_YEAR, *given], LN, "refractory-ln")
    assert r.result == "met", r.reason


def test_monthly_steroid_infusions_are_not_a_daily_high_dose(crit):
    """800 mg methylprednisolone infused monthly, each over 3 hours: spread over the month."""
    infusions = [med_admin("6902", start=f"{day(150 - i * 30)}T08:00:00Z",
                           end=f"{day(150 - i * 30)}T11:00:00Z", dose=(800, "mg"))
                 for i in range(6)]
    r = crit([P, W40, *infusions, *background()], SLE, "refractory-disease")
    assert r.result == "not-met", r.reason


def test_daily_administrations_count_like_ordered_doses(crit):
    """Prednisone 40 mg given daily for 120 days (40 kg): >= 1 mg/kg/day for >= 90 days."""
    daily = [med_admin(RX_PREDNISONE, day(130 - i), dose=(40, "mg")) for i in range(121)]
    r = crit([P, W40, *daily, *background()], SLE, "refractory-disease")
    assert r.result == "met", r.reason


def test_monthly_steroid_pulses_are_not_a_daily_high_dose(crit):
    """800 mg methylprednisolone (1000 mg prednisone) a month spread over its month is about
    33 mg a day: below 40 mg/day for 40 kg."""
    monthly = pulses("6902", 150, 30, 6, mg=800)
    r = crit([P, W40, *monthly, *background()], SLE, "refractory-disease")
    assert r.result == "not-met", r.reason


def test_the_course_gap_is_read_from_the_mappings(mappings):
    from dataclasses import replace
    from types import MappingProxyType

    from service.engine.medications import longest_course, medication_uses
    from service.engine.record import build_record
    from tests.support.builders import AS_OF
    admins = pulses(RX_CYC, 250, 40, 6)
    record = build_record([BOY, *admins], mappings)
    short = longest_course(medication_uses(record, mappings, AS_OF))[0]
    concepts = dict(mappings.concepts)
    concepts["cyclophosphamide"] = replace(concepts["cyclophosphamide"], course_gap_days=45)
    wider = replace(mappings, concepts=MappingProxyType(concepts))
    assert short == 0
    assert longest_course(medication_uses(record, wider, AS_OF))[0] == 200


# --------------------------------------------------------------------------- doses in mL
# "A dose in a volume (mL) converts to a mass through the medication's strength
# (Medication.ingredient.strength, e.g. 5 mg/mL); without a strength it is unknown."

def solution(strength: tuple[float, str, float, str] | None) -> dict[str, Any]:
    med: dict[str, Any] = {"resourceType": "Medication", "id": "sol",
                           "code": {"text": "Prednisolone oral solution"}}
    item: dict[str, Any] = {"itemCodeableConcept": cc("8638", "http://www.nlm.nih.gov/"
                                                       "research/umls/rxnorm")}
    if strength is not None:
        value, unit, per, per_unit = strength
        item["strength"] = {"numerator": quantity(value, unit),
                            "denominator": {"value": per, "unit": per_unit, "system": UCUM,
                                            "code": per_unit}}
    med["ingredient"] = [item]
    return med


ML_TABLE = [
    ("5 mg/mL, 4 mL twice daily = 40 mg/day", (5, "mg", 1, "mL"), 4, "mL", "met"),
    ("15 mg/5 mL, 10 mL daily = 30 mg/day", (15, "mg", 5, "mL"), 10, "mL", "not-met"),
    ("1 mg/mL, 0.02 L twice daily = 40 mg/day", (1, "mg", 1, "mL"), 0.02, "L", "met"),
    ("no strength", None, 4, "mL", "unknown"),
    ("strength per tablet, dose in mL", (5, "mg", 1, "{tbl}"), 4, "mL", "unknown"),
]


@pytest.mark.parametrize("strength,volume,unit,expected", [r[1:] for r in ML_TABLE],
                         ids=[r[0] for r in ML_TABLE])
def test_dose_in_ml_converts_through_strength(crit, strength, volume, unit, expected):
    use = med_statement(start=day(130), end=day(10), contained=solution(strength))
    twice = expected != "not-met"
    use["dosage"] = [{"doseAndRate": [{"doseQuantity": quantity(volume, unit)}],
                      "timing": {"repeat": {"frequency": 2 if twice else 1, "period": 1,
                                            "periodUnit": "d"}}}]
    r = crit([P, W40, use, *background()], SLE, "refractory-disease")
    assert r.result == expected, r.reason


# --------------------------------------------------------------------------- frequency text
# "A dosing frequency given only as text ... is read by a vocabulary kept in the mappings;
# text it does not know leaves the frequency unknown." 20 mg x 2 = 40 mg/day = 1 mg/kg/day.

FREQ_TABLE = [
    ("text 'twice daily'", {"text": "twice daily"}, "met"),
    ("text '2 times daily'", {"text": "2 times daily"}, "met"),
    ("text 'every 12 hours'", {"text": "every 12 hours"}, "met"),
    ("text 'Q 8 hours' (more than twice)", {"text": "Q 8 hours"}, "met"),
    ("text 'Twice a day.'", {"text": "Twice a day."}, "met"),
    ("text 'once daily'", {"text": "once daily"}, "not-met"),
    ("local code, display 'twice daily'",
     {"coding": [{"system": LOCAL_FREQ, "code": "F02", "display": "twice daily"}]}, "met"),
    ("local code, display 'BID'",
     {"coding": [{"system": LOCAL_FREQ, "code": "7", "display": "BID"}]}, "met"),
    ("local code, display 'every 24 hours'",
     {"coding": [{"system": LOCAL_FREQ, "code": "9", "display": "every 24 hours"}]}, "not-met"),
    ("text 'twice daily (BID)'", {"text": "twice daily (BID)"}, "met"),
    ("text 'BID; with food'", {"text": "BID; with food"}, "met"),
    ("parts that disagree 'once daily (q8h)'", {"text": "once daily (q8h)"}, "unknown"),
    ("unknown text", {"text": "as directed by the clinic"}, "unknown"),
    ("local code without display", {"coding": [{"system": LOCAL_FREQ, "code": "F02"}]},
     "unknown"),
]


@pytest.mark.parametrize("code,expected", [r[1:] for r in FREQ_TABLE],
                         ids=[r[0] for r in FREQ_TABLE])
def test_frequency_as_text(crit, code, expected):
    use = med_statement(RX_PREDNISONE, day(130), day(10))
    use["dosage"] = [{"doseAndRate": [{"doseQuantity": quantity(20, "mg")}],
                      "timing": {"code": code}}]
    r = crit([P, W40, use, *background()], SLE, "refractory-disease")
    assert r.result == expected, r.reason


def test_frequency_vocabulary_is_in_the_mappings(mappings):
    from service.engine.dosing import text_per_day
    from service.engine.model import FrequencyVocabulary
    assert text_per_day("twice daily", mappings.frequencies) == 2
    assert text_per_day("twice daily", FrequencyVocabulary()) is None



# --------------------------------------------------------------------------- exceptions as text
# The exceptions that a measurement rule reads from diagnoses (Gilbert syndrome, myositis,
# lupus nephritis): written only as text they are not absent, so a result that would be
# not-met without them is unknown.

EXCEPTIONS = [
    ("bilirubin 2 x ULN, Gilbert syndrome as text", LN, "bilirubin",
     [obs("1975-2", 2.0, "mg/dL", day(5), ref_high=1.0)], "Gilbert's syndrome", "unknown"),
    ("bilirubin 2 x ULN, no Gilbert", LN, "bilirubin",
     [obs("1975-2", 2.0, "mg/dL", day(5), ref_high=1.0)], None, "not-met"),
    ("ALT 5 x ULN, dermatomyositis as text", LN, "alt",
     [obs("1742-6", 125, "U/L", day(5), ref_high=25)], "Juvenile dermatomyositis", "unknown"),
    ("eGFR 20, lupus nephritis as text", LN, "egfr",
     [obs("33914-3", 20, "mL/min/{1.73_m2}", day(5))], "Lupus nephritis", "unknown"),
    ("eGFR 20, unrelated text", LN, "egfr",
     [obs("33914-3", 20, "mL/min/{1.73_m2}", day(5))], "Asthma", "not-met"),
]


@pytest.mark.parametrize("key,cid,results,text,expected", [r[1:] for r in EXCEPTIONS],
                         ids=[r[0] for r in EXCEPTIONS])
def test_an_exception_written_as_text_is_not_absent(crit, key, cid, results, text, expected):
    res = [BOY, *results] + ([text_condition(text, cid="written")] if text else [])
    r = crit(res, key, cid)
    assert r.result == expected, r.reason
    if expected == "unknown":
        assert "Condition/written" in r.evidence and "text only" in r.reason
