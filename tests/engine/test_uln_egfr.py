"""x ULN criteria (reference range vs CALIPER), their exceptions, eGFR and Schwartz."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.support.builders import (
    ALT,
    AS_OF,
    AST,
    BILI,
    BILI_MOL,
    CREAT,
    CREAT_MOL,
    EGFR,
    HEIGHT,
    INR,
    LN,
    PT,
    SCT_CLASS_IV,
    SCT_GILBERT,
    SCT_LN,
    SCT_MYOSITIS,
    SLE,
    birth_for,
    condition,
    day,
    obs,
    patient,
)

GIRL_15 = patient(birth_for(15, 100), "female")
BOY_15 = patient(birth_for(15, 100), "male")
CHILD_8 = patient(birth_for(8, 100), "female")
CHILD_10 = patient(birth_for(10, 100), "male")

# --------------------------------------------------------------------------- own reference range

REF_RANGE_TABLE = [
    # (study, criterion, code, value, unit, ref_high, expected)
    (SLE, "alt", ALT, 90, "U/L", 30, "met"),          # 3.0 x
    (SLE, "alt", ALT, 90.1, "U/L", 30, "not-met"),
    (SLE, "alt", ALT, 90, "IU/L", 30, "met"),         # IU/L alias of U/L
    (LN, "alt", ALT, 90, "U/L", 30, "met"),
    (LN, "alt", ALT, 91, "U/L", 30, "not-met"),
    (SLE, "ast", AST, 120, "U/L", 40, "met"),
    (SLE, "ast", AST, 121, "U/L", 40, "not-met"),
    (LN, "ast", AST, 120, "U/L", 40, "met"),
    (LN, "ast", AST, 120.5, "U/L", 40, "not-met"),
    (SLE, "bilirubin", BILI, 2.0, "mg/dL", 1.0, "met"),     # SLE: <= 2.0 x
    (SLE, "bilirubin", BILI, 2.01, "mg/dL", 1.0, "not-met"),
    (LN, "bilirubin", BILI, 1.5, "mg/dL", 1.0, "met"),      # LN: <= 1.5 x
    (LN, "bilirubin", BILI, 1.51, "mg/dL", 1.0, "not-met"),
    (LN, "bilirubin", BILI_MOL, 30, "umol/L", 20, "met"),   # umol/L both sides: 1.5 x
    (LN, "bilirubin", BILI_MOL, 30.2, "umol/L", 20, "not-met"),
    (LN, "inr", INR, 1.8, "{INR}", 1.2, "met"),             # 1.5 x
    (LN, "inr", INR, 1.81, "{INR}", 1.2, "not-met"),
    (LN, "pt", PT, 20.25, "s", 13.5, "met"),
    (LN, "pt", PT, 20.3, "s", 13.5, "not-met"),
]


@pytest.mark.parametrize("key,cid,code,value,unit,high,expected", REF_RANGE_TABLE,
                         ids=[f"{r[0][:3]}-{r[1]}-{r[3]}{r[4]}" for r in REF_RANGE_TABLE])
def test_uln_from_reference_range(crit, key, cid, code, value, unit, high, expected):
    o = obs(code, value, unit, day(5), ref_high=high)
    r = crit([GIRL_15, o], key, cid)
    assert r.result == expected, r.reason
    assert r.uln_source is not None and "reference range" in r.uln_source
    assert f"Observation/{o['id']}" in r.uln_source
    assert "reference range" in r.reason
    assert r.evidence[0] == f"Observation/{o['id']}"


def test_bilirubin_umol_value_with_mg_reference_range(crit):
    # 25.65 umol/L = 1.5 mg/dL (17.1 umol/L per mg/dL), ULN 1.0 mg/dL -> exactly 1.5 x
    o = obs(BILI_MOL, 25.65, "umol/L", day(5), ref_high=1.0, ref_unit="mg/dL")
    r = crit([GIRL_15, o], LN, "bilirubin")
    assert r.value.unit == "mg/dL"
    assert abs(r.value.value - Decimal("1.5")) < Decimal("0.001")
    o2 = obs(BILI_MOL, 26.0, "umol/L", day(5), ref_high=1.0, ref_unit="mg/dL")
    assert crit([GIRL_15, o2], LN, "bilirubin").result == "not-met"


# --------------------------------------------------------------------------- CALIPER fallback

CALIPER_TABLE = [
    # (patient, study, criterion, code, value, unit, expected, ULN in canonical unit)
    (GIRL_15, SLE, "alt", ALT, 66, "U/L", "met", "22"),        # ALT F 13-19: 22
    (GIRL_15, SLE, "alt", ALT, 66.5, "U/L", "not-met", "22"),
    (BOY_15, SLE, "alt", ALT, 72, "U/L", "met", "24"),         # ALT M 13-19: 24
    (BOY_15, SLE, "alt", ALT, 73, "U/L", "not-met", "24"),
    (CHILD_8, LN, "alt", ALT, 75, "U/L", "met", "25"),         # ALT MF 1-13: 25
    (CHILD_8, LN, "alt", ALT, 76, "U/L", "not-met", "25"),
    (CHILD_8, LN, "ast", AST, 108, "U/L", "met", "36"),        # AST MF 7-12: 36
    (CHILD_8, LN, "ast", AST, 109, "U/L", "not-met", "36"),
    (GIRL_15, SLE, "ast", AST, 78, "U/L", "met", "26"),        # AST F 12-19: 26
    (BOY_15, SLE, "ast", AST, 106, "U/L", "not-met", "35"),    # AST M 12-19: 35
    (GIRL_15, SLE, "bilirubin", BILI_MOL, 28.8, "umol/L", "met", None),    # 2 x 14.4
    (GIRL_15, SLE, "bilirubin", BILI_MOL, 28.9, "umol/L", "not-met", None),
    (CHILD_8, LN, "bilirubin", BILI_MOL, 10.2, "umol/L", "met", None),     # 1.5 x 6.8
    (CHILD_8, LN, "bilirubin", BILI_MOL, 10.3, "umol/L", "not-met", None),
]


@pytest.mark.parametrize("pat,key,cid,code,value,unit,expected,uln", CALIPER_TABLE,
                         ids=[f"{r[2]}-{r[0].get('gender')}-{r[4]}" for r in CALIPER_TABLE])
def test_uln_from_caliper_by_age_and_sex(crit, pat, key, cid, code, value, unit, expected, uln):
    o = obs(code, value, unit, day(5))
    r = crit([pat, o], key, cid)
    assert r.result == expected, r.reason
    assert r.uln_source is not None and "CALIPER" in r.uln_source
    assert "CALIPER" in r.reason
    if uln is not None:
        assert r.uln.value == Decimal(uln)


def test_caliper_row_by_whole_years_just_before_birthday(crit):
    # Turns 13 two days after the measurement: still 12 for the age/sex table.
    measured = AS_OF - timedelta(days=1)
    birth = (measured.replace(year=measured.year - 13) + timedelta(days=2)).isoformat()
    o = obs(ALT, 70, "U/L", measured.isoformat())   # 2.8 x 25 (met); 3.18 x 22 (not met)
    r = crit([patient(birth, "female"), o], SLE, "alt")
    assert r.uln.value == Decimal(25)
    assert r.result == "met"
    # Two days later she is 13: the 13-19 y female row applies.
    birth_13 = (measured.replace(year=measured.year - 13)).isoformat()
    r13 = crit([patient(birth_13, "female"), o], SLE, "alt")
    assert r13.uln.value == Decimal(22)
    assert r13.result == "not-met"


def test_reference_range_wins_over_caliper(crit):
    o = obs(ALT, 66, "U/L", day(5), ref_high=40)
    r = crit([GIRL_15, o], SLE, "alt")
    assert r.uln.value == Decimal(40)
    assert "reference range" in r.uln_source


@pytest.mark.parametrize("pat,why", [
    (patient(None, "female"), "birth date"),
    (patient(birth_for(15), None), "sex"),
])
def test_caliper_needs_age_and_sex(crit, pat, why):
    r = crit([pat, obs(ALT, 20, "U/L", day(5))], SLE, "alt")
    assert r.result == "unknown"
    assert why in r.reason


@pytest.mark.parametrize("cid,code,value,unit", [(
    "inr", INR, 1.1, "{INR}"), ("pt", PT, 12.0, "s")])
def test_inr_pt_without_reference_range_are_unknown(crit, cid, code, value, unit):
    r = crit([CHILD_10, obs(code, value, unit, day(5))], LN, cid)
    assert r.result == "unknown"
    assert "ULN" in r.reason and "reference range" in r.reason


# --------------------------------------------------------------------------- exceptions

@pytest.mark.parametrize("key,bili,gilbert,expected", [
    (LN, 2.5, True, "met"),       # Gilbert: <= 3.0 x
    (LN, 2.5, False, "not-met"),  # otherwise <= 1.5 x
    (LN, 3.0, True, "met"),
    (LN, 3.01, True, "not-met"),
    (LN, 1.5, False, "met"),
    (SLE, 2.5, True, "not-met"),  # the SLE study has no Gilbert exception (<= 2.0 x)
])
def test_gilbert_exception(crit, key, bili, gilbert, expected):
    res = [CHILD_10, obs(BILI, bili, "mg/dL", day(5), ref_high=1.0)]
    if gilbert:
        g = condition(SCT_GILBERT)
        res.append(g)
    r = crit(res, key, "bilirubin")
    assert r.result == expected, r.reason
    if gilbert and key == LN:
        assert f"Condition/{g['id']}" in r.evidence


@pytest.mark.parametrize("key,cid,code,myositis,expected", [
    (LN, "alt", ALT, True, "unknown"),
    (LN, "alt", ALT, False, "not-met"),
    (LN, "ast", AST, True, "unknown"),
    (LN, "ast", AST, False, "not-met"),
    (SLE, "alt", ALT, True, "not-met"),   # no myopathy exception in the SLE study
])
def test_myositis_exception(crit, key, cid, code, myositis, expected):
    res = [CHILD_10, obs(code, 100, "U/L", day(5), ref_high=25)]   # 4 x ULN
    if myositis:
        m = condition(SCT_MYOSITIS)
        res.append(m)
    r = crit(res, key, cid)
    assert r.result == expected, r.reason
    if expected == "unknown":
        assert f"Condition/{m['id']}" in r.evidence
        assert "review" in r.reason


def test_myositis_does_not_change_a_normal_alt(crit):
    res = [CHILD_10, obs(ALT, 20, "U/L", day(5), ref_high=25), condition(SCT_MYOSITIS)]
    assert crit(res, LN, "alt").result == "met"


def test_refuted_myositis_gives_no_exception(crit):
    res = [CHILD_10, obs(ALT, 100, "U/L", day(5), ref_high=25),
           condition(SCT_MYOSITIS, verification="refuted")]
    assert crit(res, LN, "alt").result == "not-met"


# --------------------------------------------------------------------------- eGFR

EGFR_UNIT = "mL/min/{1.73_m2}"


@pytest.mark.parametrize("key,value,comparator,expected", [
    (SLE, 30, None, "met"), (SLE, 29.9, None, "not-met"), (LN, 30, None, "met"),
    (LN, 29.9, None, "not-met"), (SLE, 60, ">", "met"), (LN, 60, ">", "met"),
    (SLE, 15, "<", "not-met"),
])
def test_reported_egfr(crit, key, value, comparator, expected):
    o = obs(EGFR, value, EGFR_UNIT, day(5), comparator=comparator)
    r = crit([CHILD_10, o], key, "egfr")
    assert r.result == expected, r.reason
    assert r.evidence == (f"Observation/{o['id']}",)
    assert r.value.unit == EGFR_UNIT


@pytest.mark.parametrize("unit", ["mL/min/1.73m2", "mL/min/{1.73_m2}"])
def test_reported_egfr_unit_spellings(crit, unit):
    assert crit([CHILD_10, obs(EGFR, 45, unit, day(5))], SLE, "egfr").result == "met"


SCHWARTZ_TABLE = [
    # (creatinine value, unit, height value, unit, expected, eGFR)
    (0.5, "mg/dL", 140, "cm", "met", "115.6"),            # 0.413 x 140 / 0.5
    (44.21, "umol/L", 140, "cm", "met", "115.6"),         # 44.21 umol/L = 0.5 mg/dL
    (0.5, "mg/dL", 55.1181, "[in_i]", "met", "115.6"),    # 55.1181 in = 140 cm
    (2.065, "mg/dL", 150, "cm", "met", "30.0"),           # exactly 30
    (2.1, "mg/dL", 150, "cm", "not-met", "29.5"),
    (185.7, "umol/L", 150, "cm", "not-met", "29.5"),      # 185.7 umol/L = 2.1 mg/dL
]


@pytest.mark.parametrize("c_value,c_unit,h_value,h_unit,expected,egfr_value", SCHWARTZ_TABLE,
                         ids=[f"{r[0]}{r[1]}-{r[2]}{r[3]}" for r in SCHWARTZ_TABLE])
def test_bedside_schwartz(crit, c_value, c_unit, h_value, h_unit, expected, egfr_value):
    code = CREAT if c_unit == "mg/dL" else CREAT_MOL
    creat = obs(code, c_value, c_unit, day(5))
    height = obs(HEIGHT, h_value, h_unit, day(20))
    r = crit([CHILD_10, creat, height], SLE, "egfr")
    assert r.result == expected, r.reason
    assert r.value.value == Decimal(egfr_value)
    assert r.value.unit == EGFR_UNIT
    assert set(r.evidence) == {f"Observation/{creat['id']}", f"Observation/{height['id']}"}
    assert "Schwartz" in r.reason


@pytest.mark.parametrize("height_days_before_creatinine,expected", [
    (0, "met"), (179, "met"), (180, "met"), (181, "unknown"), (400, "unknown"),
])
def test_schwartz_height_within_180_days(crit, height_days_before_creatinine, expected):
    creat = obs(CREAT, 0.5, "mg/dL", day(5))
    height = obs(HEIGHT, 140, "cm", day(5 + height_days_before_creatinine))
    r = crit([CHILD_10, creat, height], LN, "egfr")
    assert r.result == expected, r.reason
    if expected == "unknown":
        assert "height" in r.reason and "180 days" in r.reason


def test_schwartz_height_after_creatinine_counts(crit):
    creat = obs(CREAT, 0.5, "mg/dL", day(60))
    height = obs(HEIGHT, 140, "cm", day(2))
    assert crit([CHILD_10, creat, height], LN, "egfr").result == "met"


def test_reported_egfr_preferred_over_schwartz(crit):
    reported = obs(EGFR, 25, EGFR_UNIT, day(10))
    res = [CHILD_10, reported, obs(CREAT, 0.5, "mg/dL", day(5)), obs(HEIGHT, 140, "cm", day(5))]
    r = crit(res, SLE, "egfr")
    assert r.result == "not-met"
    assert r.evidence == (f"Observation/{reported['id']}",)


@pytest.mark.parametrize("key,ln_code,expected", [
    (LN, SCT_LN, "unknown"),        # protocol exception: investigator review
    (LN, SCT_CLASS_IV, "unknown"),  # class IV nephritis is lupus nephritis too
    (LN, None, "not-met"),
    (SLE, SCT_LN, "not-met"),       # the SLE study has no renal exception
    (SLE, None, "not-met"),
])
def test_low_egfr_and_lupus_nephritis(crit, key, ln_code, expected):
    res = [CHILD_10, obs(CREAT, 2.1, "mg/dL", day(5)), obs(HEIGHT, 150, "cm", day(5))]
    if ln_code:
        res.append(condition(ln_code))
    r = crit(res, key, "egfr")
    assert r.result == expected, r.reason
    if expected == "unknown":
        assert "review" in r.reason


def test_reported_low_egfr_with_lupus_nephritis_ln_is_unknown(crit):
    res = [CHILD_10, obs(EGFR, 20, EGFR_UNIT, day(5)), condition(SCT_LN)]
    assert crit(res, LN, "egfr").result == "unknown"
    assert crit(res, SLE, "egfr").result == "not-met"


@pytest.mark.parametrize("res_extra,missing", [
    ([], "creatinine"),
    ([obs(CREAT, 0.5, "mg/dL", day(5))], "height"),
    ([obs(CREAT, 0.5, "mg/dL", day(120)), obs(HEIGHT, 140, "cm", day(120))], "creatinine"),
])
def test_egfr_unknown_says_what_is_missing(crit, res_extra, missing):
    r = crit([CHILD_10, *res_extra], LN, "egfr")
    assert r.result == "unknown"
    assert "eGFR" in r.reason and missing in r.reason


def test_schwartz_not_used_for_adults(crit):
    adult = patient(birth_for(30), "female")
    res = [adult, obs(CREAT, 0.5, "mg/dL", day(5)), obs(HEIGHT, 140, "cm", day(5))]
    r = crit(res, SLE, "egfr")
    assert r.result == "unknown"
    assert "pediatric" in r.reason


def test_schwartz_is_compared_before_rounding(crit):
    res = [CHILD_10, obs(CREAT, 2.066, "mg/dL", day(5)), obs(HEIGHT, 150, "cm", day(5))]
    assert crit(res, SLE, "egfr").result == "not-met"


def test_comparator_values_in_uln_criteria(crit):
    assert crit([GIRL_15, obs(ALT, 5, "U/L", day(5), comparator="<", ref_high=30)], SLE,
                "alt").result == "met"
    assert crit([GIRL_15, obs(ALT, 500, "U/L", day(5), comparator=">", ref_high=30)], SLE,
                "alt").result == "not-met"


def test_alt_in_ukat_per_litre(crit):
    # 1 ukat/L = 60 U/L (U = umol/min): 60 / 25 = 2.4 x ULN
    r = crit([GIRL_15, obs(ALT, 1.0, "ukat/L", day(5), ref_high=25, ref_unit="U/L")], SLE,
             "alt")
    assert r.result == "met"
    assert r.value.value == Decimal(60) and r.value.unit == "U/L"


def test_creatinine_in_mmol_per_litre(crit):
    res = [CHILD_10, obs(CREAT_MOL, 0.04421, "mmol/L", day(5)), obs(HEIGHT, 140, "cm", day(5))]
    r = crit(res, LN, "egfr")
    assert r.result == "met"
    assert r.value.value == Decimal("115.6")
