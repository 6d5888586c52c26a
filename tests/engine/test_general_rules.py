"""General rules of docs/decisions.md: as-of date, age, look-back, statuses, UCUM conversion."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from service.engine.evaluate import UnknownStudyError, evaluate_patient
from service.engine.record import RecordError
from tests.support.builders import (
    ALT,
    AS_OF,
    HB,
    LN,
    SCT_SLE,
    SLE,
    WBC,
    birth_for,
    condition,
    day,
    obs,
    patient,
    sledai,
)

# --------------------------------------------------------------------------- age


def _born(years: int, days_offset: int) -> str:
    """Birth date whose birthday is `days_offset` days after as_of (negative: before)."""
    return (AS_OF.replace(year=AS_OF.year - years) + timedelta(days=days_offset)).isoformat()


AGE_TABLE = [
    # SLE: age >= 5 whole years
    (SLE, _born(5, -1), "met", 5),       # 5th birthday yesterday
    (SLE, _born(5, 0), "met", 5),        # 5th birthday today
    (SLE, _born(5, 1), "not-met", 4),    # 5th birthday tomorrow
    (SLE, _born(40, 0), "met", 40),      # no upper bound
    # LN: 6..18 inclusive
    (LN, _born(6, 0), "met", 6),
    (LN, _born(6, 1), "not-met", 5),
    (LN, _born(6, -1), "met", 6),
    (LN, _born(19, 1), "met", 18),       # 18 years 364 days
    (LN, _born(18, 0), "met", 18),
    (LN, _born(19, 0), "not-met", 19),   # 19th birthday today
    (LN, _born(19, -1), "not-met", 19),
    (LN, _born(3, 0), "not-met", 3),
]


@pytest.mark.parametrize("key,birth,expected,years", AGE_TABLE,
                         ids=[f"{k[:3]}-{b}-{e}" for k, b, e, _ in AGE_TABLE])
def test_age_in_whole_years_at_as_of(crit, key, birth, expected, years):
    r = crit([patient(birth)], key, "age")
    assert r.result == expected, r.reason
    assert r.value is not None and r.value.value == years
    assert r.evidence == ("Patient/p1",)


PARTIAL_BIRTH = [
    (SLE, "2010", "met"),          # 15 or 16
    (SLE, "2021", "unknown"),      # 4 or 5
    (SLE, "2023", "not-met"),      # 2 or 3
    (SLE, "2021-10", "met"),       # born October 2021: 5 on 2026-11-15
    (SLE, "2021-11", "unknown"),   # 4 or 5 depending on the day
    (SLE, "2021-12", "not-met"),   # 4
    (LN, "2012", "met"),           # 13 or 14
    (LN, "2007", "unknown"),       # 18 or 19
    (LN, "2020", "unknown"),       # 5 or 6
    (LN, "2000", "not-met"),       # 25 or 26
    (LN, "2007-12", "met"),        # 18
    (LN, "2007-11", "unknown"),    # 18 or 19
]


@pytest.mark.parametrize("key,birth,expected", PARTIAL_BIRTH)
def test_partial_birth_date(crit, key, birth, expected):
    r = crit([patient(birth)], key, "age")
    assert r.result == expected, r.reason
    if expected == "unknown":
        assert "partial" in r.reason.lower()


@pytest.mark.parametrize("key", [SLE, LN])
def test_age_without_birth_date_is_unknown(crit, key):
    r = crit([patient(None)], key, "age")
    assert r.result == "unknown"
    assert "birth date" in r.reason.lower()


@pytest.mark.parametrize("key", [SLE, LN])
def test_age_uses_the_as_of_date_not_today(crit, key):
    birth = "2010-06-01"
    assert crit([patient(birth)], key, "age", as_of=date(2016, 6, 1)).value.value == 6
    assert crit([patient(birth)], key, "age", as_of=date(2016, 5, 31)).value.value == 5


# --------------------------------------------------------------------------- as-of and look-back

P = patient(birth_for(12, 40), "female")


@pytest.mark.parametrize("age_days,expected", [(0, "met"), (1, "met"), (89, "met"), (90, "met"),
                                               (91, "unknown"), (400, "unknown")])
def test_ninety_day_look_back(crit, age_days, expected):
    o = obs(HB, 100, "g/L", day(age_days))
    r = crit([P, o], LN, "hemoglobin")
    assert r.result == expected, r.reason
    assert r.evidence == (f"Observation/{o['id']}",)
    if expected == "unknown":
        assert "stale" in r.reason.lower() and "90 days" in r.reason


@pytest.mark.parametrize("key", [SLE, LN])
@pytest.mark.parametrize("age_days,expected", [(90, "met"), (91, "unknown")])
def test_look_back_applies_to_scores(crit, key, age_days, expected):
    assert crit([P, sledai(12, day(age_days))], key, "sledai-2k").result == expected


def test_stale_newest_value_is_not_replaced_by_nothing(crit):
    """A value older than 90 days is unknown even if it would fail: never a stale not-met."""
    r = crit([P, obs(HB, 40, "g/L", day(120))], LN, "hemoglobin")
    assert r.result == "unknown"


def test_data_after_as_of_is_ignored(crit):
    before = obs(HB, 100, "g/L", day(10))
    after = obs(HB, 50, "g/L", day(-1))
    r = crit([P, before, after], LN, "hemoglobin")
    assert r.result == "met"
    assert r.evidence == (f"Observation/{before['id']}",)


def test_only_data_after_as_of_is_unknown(crit):
    r = crit([P, obs(HB, 100, "g/L", day(-3))], LN, "hemoglobin")
    assert r.result == "unknown"
    assert "after" in r.reason.lower()


def test_as_of_moves_the_window(crit):
    o = obs(HB, 100, "g/L", "2026-01-10")
    assert crit([P, o], LN, "hemoglobin", as_of=date(2026, 4, 10)).result == "met"   # 90 days
    assert crit([P, o], LN, "hemoglobin", as_of=date(2026, 4, 11)).result == "unknown"
    assert crit([P, o], LN, "hemoglobin", as_of=date(2026, 1, 9)).result == "unknown"


def test_condition_with_onset_after_as_of_is_ignored(crit):
    later = condition(SCT_SLE, onset=day(-5))
    assert crit([P, later], SLE, "sle-diagnosis").result == "not-met"
    assert crit([P, later], SLE, "sle-diagnosis", as_of=AS_OF + timedelta(days=5)
                ).result == "met"


def test_latest_value_wins_over_older(crit):
    old = obs(HB, 100, "g/L", day(30))
    new = obs(HB, 55, "g/L", day(5))
    r = crit([P, new, old], LN, "hemoglobin")
    assert r.result == "not-met"
    assert r.evidence == (f"Observation/{new['id']}",)
    # Order in the record does not matter.
    assert crit([P, old, new], LN, "hemoglobin").evidence == (f"Observation/{new['id']}",)


@pytest.mark.parametrize("status,used", [
    ("final", True), ("amended", True), ("corrected", True),
    ("entered-in-error", False), ("cancelled", False), ("preliminary", False),
    ("registered", False),
])
def test_observation_status_decides_usability(crit, status, used):
    old = obs(HB, 100, "g/L", day(30))
    new = obs(HB, 55, "g/L", day(5), status=status)
    r = crit([P, old, new], LN, "hemoglobin")
    chosen = new if used else old
    assert r.evidence == (f"Observation/{chosen['id']}",)
    assert r.result == ("not-met" if used else "met")


def test_only_preliminary_value_is_unknown(crit):
    r = crit([P, obs(HB, 100, "g/L", day(5), status="preliminary")], LN, "hemoglobin")
    assert r.result == "unknown"


def test_other_patients_data_is_ignored(crit):
    other = obs(HB, 40, "g/L", day(2))
    other["subject"] = {"reference": "Patient/someone-else"}
    mine = obs(HB, 100, "g/L", day(10))
    r = crit([P, other, mine], LN, "hemoglobin")
    assert r.result == "met"
    assert r.evidence == (f"Observation/{mine['id']}",)


# --------------------------------------------------------------------------- units

UNKNOWN_UNITS = [
    (LN, "hemoglobin", HB, 4.0, "mmol"),        # an amount, not a concentration
    (LN, "hemoglobin", HB, 100, "g"),           # not a concentration
    (LN, "hemoglobin", HB, 100, None),          # missing unit
    (LN, "hemoglobin", HB, 100, "bananas"),     # not UCUM
    (LN, "wbc", WBC, 5, "g/dL"),
    (LN, "wbc", WBC, 5, None),
    (SLE, "alt", ALT, 20, "mg/dL"),
    (SLE, "alt", ALT, 20, None),
]


@pytest.mark.parametrize("key,cid,code,value,unit", UNKNOWN_UNITS,
                         ids=[f"{c}-{u}" for _, c, _, _, u in UNKNOWN_UNITS])
def test_unconvertible_or_missing_unit_is_unknown(crit, key, cid, code, value, unit):
    o = obs(code, value, unit, day(5), ref_high=40 if cid == "alt" else None,
            ref_unit="U/L" if cid == "alt" else None)
    r = crit([P, o], key, cid)
    assert r.result == "unknown", r.reason
    assert "unit" in r.reason.lower()
    assert r.evidence == (f"Observation/{o['id']}",)


def test_unit_text_without_ucum_code_is_read(crit):
    o = obs(HB, 11, None, day(5))
    o["valueQuantity"]["unit"] = "g/dl"   # human spelling only, mapped by an alias
    r = crit([P, o], LN, "hemoglobin")
    assert r.result == "met"
    assert r.value.value == Decimal("110")


@pytest.mark.parametrize("unit", ["K/uL", "x10E3/uL", "10^9/L", "cells/uL"])
def test_common_non_ucum_count_spellings(crit, unit):
    value = 4000 if unit == "cells/uL" else 4
    r = crit([P, obs(WBC, value, unit, day(5))], LN, "wbc")
    assert r.result == "met"
    assert r.value.value == Decimal(4)
    assert r.value.unit == "10*9/L"


def test_comparator_value_is_compared_as_an_interval(crit):
    # "> 100 g/L" is certainly >= 60; "< 80 g/L" cannot say whether >= 60.
    assert crit([P, obs(HB, 100, "g/L", day(5), comparator=">")], LN,
                "hemoglobin").result == "met"
    assert crit([P, obs(HB, 80, "g/L", day(5), comparator="<")], LN,
                "hemoglobin").result == "unknown"
    assert crit([P, obs(HB, 50, "g/L", day(5), comparator="<")], LN,
                "hemoglobin").result == "not-met"


# --------------------------------------------------------------------------- record errors


def test_record_without_patient_raises(mappings):
    with pytest.raises(RecordError, match="Patient"):
        evaluate_patient([obs(HB, 100, "g/L")], mappings, AS_OF, strict=True)


def test_stu3_condition_raises(mappings):
    stu3 = condition(SCT_SLE)
    stu3["clinicalStatus"] = "active"
    with pytest.raises(RecordError, match="R4"):
        evaluate_patient([P, stu3], mappings, AS_OF, strict=True)


def test_unknown_study_key_raises(mappings):
    with pytest.raises(UnknownStudyError, match="no-such-study"):
        evaluate_patient([P], mappings, AS_OF, ["no-such-study"], strict=True)


def test_studies_default_to_all_in_spec_order(mappings):
    evaluation = evaluate_patient([P], mappings, AS_OF, strict=True)
    # Every loaded study, the seed studies first in seed order (others may follow).
    assert [s.study for s in evaluation.studies] == list(mappings.studies)
    assert [s.study for s in evaluation.studies][:2] == [SLE, LN]
    assert evaluation.patient_id == "p1" and evaluation.as_of == AS_OF
