"""The daily-dose and cumulative-dose rules with their exact reasons, values and evidence:
doses at the threshold, per kg and per day through a body weight, prednisone equivalence,
ranges across the threshold, windows, partial histories and administrations not recorded."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from service.engine.results import Value
from tests.support.builders import (
    AS_OF,
    RX_CYC,
    RX_METHYLPRED,
    RX_PREDNISONE,
    WEIGHT,
    day,
    med_admin,
    med_request,
    med_statement,
    obs,
)

RX_HCQ = "5521"
UCUM = "http://unitsofmeasure.org"


def pred(start: int, end: int | None, mg: float | None, mid: str, **kw: Any) -> dict[str, Any]:
    return med_statement(RX_PREDNISONE, day(start), day(end) if end is not None else None,
                         dose=(mg, "mg") if mg is not None else None, mid=mid, **kw)


def kg(value: float, when: int = 10) -> dict[str, Any]:
    return obs(WEIGHT, value, "kg", day(when), oid="w1")


def per_kg_dose(res: dict[str, Any], mg_per_kg: float) -> dict[str, Any]:
    res["dosage"][0]["doseAndRate"] = [{"doseQuantity": {
        "value": mg_per_kg, "unit": "mg/kg", "system": UCUM, "code": "mg/kg"}}]
    return res


def dose_range(res: dict[str, Any], low: float, high: float) -> dict[str, Any]:
    res["dosage"][0]["doseAndRate"] = [{"doseRange": {
        "low": {"value": low, "unit": "mg", "system": UCUM, "code": "mg"},
        "high": {"value": high, "unit": "mg", "system": UCUM, "code": "mg"}}}]
    return res


PRED = {"concepts": ["prednisone", "methylprednisolone"], "min_mg_per_day": "20", "min_days": 30,
        "equivalent": "prednisone"}
PER_KG = {"concepts": ["prednisone"], "min_mg_per_kg_day": "0.5", "min_days": 30}
PER_DAY = {"concepts": ["prednisone"], "min_mg_per_day": "20", "min_days": 30}
NO_EQ = {k: v for k, v in PRED.items() if k != "equivalent"}

# (id, params, resources, result, reason, value in days or None, evidence)
DAILY: list[tuple[str, dict[str, Any], list[dict[str, Any]], str, str, Any, tuple[str, ...]]] = [
    ('at-threshold', PRED, [pred(100, 70, 20, 'm1')], 'met',
     'prednisone or methylprednisolone at >= 20 mg/day for 30 days.',
     30, ('MedicationStatement/m1',)),
    ('one-day-short', PRED, [pred(100, 71, 20, 'm1')], 'not-met',
     'No course of prednisone or methylprednisolone at >= 20 mg/day for 30 days: the longest '
     'such course is 29 days, 30 needed.',
     29, ('MedicationStatement/m1',)),
    ('below-dose', PRED, [pred(100, 10, 19.9, 'm1')], 'not-met',
     'No course of prednisone or methylprednisolone at >= 20 mg/day for 30 days: the longest '
     'such course is 0 days, 30 needed.',
     0, ('MedicationStatement/m1',)),
    ('methylpred-equivalent', PRED, [med_statement(RX_METHYLPRED, day(100), day(10), dose=(16,
         'mg'), mid='m1')], 'met',
     'prednisone or methylprednisolone at >= 20 mg/day for 90 days.',
     90, ('MedicationStatement/m1',)),
    ('no-equivalent-asked', NO_EQ, [med_statement(RX_METHYLPRED, day(100), day(10), dose=(16,
         'mg'), mid='m1')], 'not-met',
     'No course of prednisone or methylprednisolone at >= 20 mg/day for 30 days: the longest '
     'such course is 0 days, 30 needed.',
     0, ('MedicationStatement/m1',)),
    ('dose-unknown', PRED, [pred(100, 10, None, 'm1')], 'unknown',
     'Medication history is partial (dose of MedicationStatement/m1 unknown); the longest such '
     'course is 0 days, 30 needed.',
     None, ('MedicationStatement/m1',)),
    ('period-unknown', PRED, [pred(100, None, 20, 'm1')], 'unknown',
     'Medication history is partial (period of MedicationStatement/m1 unknown); the longest '
     'such course is 0 days, 30 needed.',
     None, ('MedicationStatement/m1',)),
    ('other-drug-only', PRED, [med_statement(RX_HCQ, day(100), day(10), dose=(200, 'mg'),
         mid='h1')], 'not-met',
     'No prednisone or methylprednisolone is recorded.',
     None, ()),
    ('no-history', PRED, [], 'unknown',
     'No medication history is recorded, so the dose of prednisone or methylprednisolone cannot '
     'be judged.',
     None, ()),
    ('window-cuts', {**PRED, 'within_days': 40}, [pred(100, 10, 20, 'm1')], 'met',
     'prednisone or methylprednisolone at >= 20 mg/day for 30 days in the 40 days before '
     '2026-11-15.',
     30, ('MedicationStatement/m1',)),
    ('window-before', {**PRED, 'within_days': 40}, [pred(100, 50, 20, 'm1')], 'not-met',
     'No course of prednisone or methylprednisolone at >= 20 mg/day for 30 days in the 40 days '
     'before 2026-11-15: the longest such course is 0 days, 30 needed.',
     0, ('MedicationStatement/m1',)),
    ('per-kg-from-mg', PER_KG, [pred(100, 10, 20, 'm1'), kg(40)], 'met',
     'prednisone at >= 0.5 mg/kg/day for 90 days.',
     90, ('MedicationStatement/m1',)),
    ('per-kg-below', PER_KG, [pred(100, 10, 19, 'm1'), kg(40)], 'not-met',
     'No course of prednisone at >= 0.5 mg/kg/day for 30 days: the longest such course is 0 '
     'days, 30 needed.',
     0, ('MedicationStatement/m1',)),
    ('per-kg-no-weight', PER_KG, [pred(100, 10, 20, 'm1')], 'unknown',
     'Medication history is partial (no body weight to convert between mg and mg/kg); the '
     'longest such course is 0 days, 30 needed.',
     None, ('MedicationStatement/m1',)),
    ('per-kg-old-weight', {**PER_KG, 'weight_lookback_days': 5}, [pred(100, 10, 20, 'm1'),
         kg(40)], 'unknown',
     'Medication history is partial (no body weight to convert between mg and mg/kg); the '
     'longest such course is 0 days, 30 needed.',
     None, ('MedicationStatement/m1',)),
    ('per-kg-zero-weight', PER_KG, [pred(100, 10, 20, 'm1'), kg(0)], 'unknown',
     'Medication history is partial (no body weight to convert between mg and mg/kg); the '
     'longest such course is 0 days, 30 needed.',
     None, ('MedicationStatement/m1',)),
    ('mg-from-per-kg', PER_DAY, [per_kg_dose(pred(100, 10, None, 'm1'), 0.5), kg(40)], 'met',
     'prednisone at >= 20 mg/day for 90 days.',
     90, ('MedicationStatement/m1',)),
    ('per-kg-dose-per-kg', PER_KG, [per_kg_dose(pred(100, 10, None, 'm1'), 0.5)], 'met',
     'prednisone at >= 0.5 mg/kg/day for 90 days.',
     90, ('MedicationStatement/m1',)),
    ('range-spans', PRED, [dose_range(pred(100, 10, None, 'm1'), 10, 30)], 'unknown',
     'Medication history is partial (dose range of MedicationStatement/m1 (10-30 mg/day) spans '
     '20 mg/day); the longest such course is 0 days, 30 needed.',
     None, ('MedicationStatement/m1',)),
    ('range-above', PRED, [dose_range(pred(100, 10, None, 'm1'), 20, 30)], 'met',
     'prednisone or methylprednisolone at >= 20 mg/day for 90 days.',
     90, ('MedicationStatement/m1',)),
    ('range-below', PRED, [dose_range(pred(100, 10, None, 'm1'), 10, 19)], 'not-met',
     'No course of prednisone or methylprednisolone at >= 20 mg/day for 30 days: the longest '
     'such course is 0 days, 30 needed.',
     0, ('MedicationStatement/m1',)),
    ('two-gaps-named-once', PRED, [pred(100, 10, None, 'm1'), pred(200, 150, None, 'm2'),
         pred(100, 90, 20, 'm3')], 'unknown',
     'Medication history is partial (dose of MedicationStatement/m1 unknown; dose of '
     'MedicationStatement/m2 unknown); the longest such course is 10 days, 30 needed.',
     None, ('MedicationStatement/m1', 'MedicationStatement/m2', 'MedicationStatement/m3')),
    # The body weight's look-back is a year unless the criterion says otherwise.
    ("weight-365-days-old", PER_KG, [pred(400, 10, 20, "m1"), kg(40, 365)], "met",
     "prednisone at >= 0.5 mg/kg/day for 390 days.", 390, ("MedicationStatement/m1",)),
    ("weight-366-days-old", PER_KG, [pred(400, 10, 20, "m1"), kg(40, 366)], "unknown",
     "Medication history is partial (no body weight to convert between mg and mg/kg); the "
     "longest such course is 0 days, 30 needed.", None, ("MedicationStatement/m1",)),
    # A use that does not count, listed first, does not hide one that does.
    ("below-then-qualifying", PRED, [pred(200, 150, 10, "m0"), pred(100, 10, 20, "m1")], "met",
     "prednisone or methylprednisolone at >= 20 mg/day for 90 days.", 90,
     ("MedicationStatement/m1",)),
    ("unknown-then-qualifying", PRED, [pred(200, 150, None, "m0"), pred(100, 10, 20, "m1")],
     "met", "prednisone or methylprednisolone at >= 20 mg/day for 90 days.", 90,
     ("MedicationStatement/m1",)),
    ("before-window-then-qualifying", {**PRED, "within_days": 40},
     [pred(200, 150, 20, "m0"), pred(100, 5, 20, "m1")], "met",
     "prednisone or methylprednisolone at >= 20 mg/day for 35 days in the 40 days before "
     "2026-11-15.", 35, ("MedicationStatement/m1",)),
    # A range across the threshold, or a period unknown, listed first: the next use still counts
    # (the history stays partial).
    ("range-spans-then-qualifying", PRED, [dose_range(pred(200, 150, None, "m0"), 10, 30),
                                           pred(100, 10, 20, "m1")], "met",
     "prednisone or methylprednisolone at >= 20 mg/day for 90 days.", 90,
     ("MedicationStatement/m1",)),
    ("period-unknown-then-qualifying", PRED, [pred(200, None, 20, "m0"), pred(100, 10, 20, "m1")],
     "met", "prednisone or methylprednisolone at >= 20 mg/day for 90 days.", 90,
     ("MedicationStatement/m1",)),
    # A use ending on the window's first day still joins the course that follows it.
    ("ending-on-the-windows-first-day", {**PRED, "within_days": 40},
     [pred(100, 40, 20, "m0"), pred(35, 5, 20, "m1")], "met",
     "prednisone or methylprednisolone at >= 20 mg/day for 35 days in the 40 days before "
     "2026-11-15.", 35, ("MedicationStatement/m0", "MedicationStatement/m1")),
    # A body weight of 1 kg or less is still a weight (a preterm newborn's).
    ("per-kg-one-kg", PER_KG, [pred(100, 10, 1, "m1"), kg(1)], "met",
     "prednisone at >= 0.5 mg/kg/day for 90 days.", 90, ("MedicationStatement/m1",)),
    ("per-kg-under-one-kg", PER_KG, [pred(100, 10, 0.4, "m1"), kg(0.8)], "met",
     "prednisone at >= 0.5 mg/kg/day for 90 days.", 90, ("MedicationStatement/m1",)),
]


@pytest.mark.parametrize(("params", "resources", "expected", "reason", "days", "evidence"),
                         [c[1:] for c in DAILY], ids=[c[0] for c in DAILY])
def test_daily_dose(rule_check, params, resources, expected, reason, days, evidence):
    found = rule_check("daily-dose", params, resources)
    assert (found.result, found.reason, found.evidence) == (expected, reason, evidence)
    assert found.value == (Value(days, "d") if days is not None else None)


CUM = {"concepts": ["cyclophosphamide"], "min_mg": "1500", "within_days": 365}


def adm(when: int, mg: float | None, mid: str, unit: str = "mg") -> dict[str, Any]:
    return med_admin(RX_CYC, day(when), dose=(mg, unit) if mg is not None else None, mid=mid)


# (id, resources, result, reason, mg summed, evidence)
CUMULATIVE: list[tuple[str, list[dict[str, Any]], str, str, Any, tuple[str, ...]]] = [
    ('sum-reaches', [adm(300, 750, 'a1'), adm(30, 750, 'a2')], 'met',
     '1500 mg of cyclophosphamide given in the 365 days before 2026-11-15 (2 '
     'administration(s)), at least 1500 mg.',
     1500, ('MedicationAdministration/a1', 'MedicationAdministration/a2')),
    ('sum-below', [adm(300, 750, 'a1'), adm(30, 749, 'a2')], 'not-met',
     '1499 mg of cyclophosphamide given in the 365 days before 2026-11-15 (2 '
     'administration(s)), below 1500 mg.',
     1499, ('MedicationAdministration/a1', 'MedicationAdministration/a2')),
    ('first-day-of-window', [adm(365, 1500, 'a1')], 'met',
     '1500 mg of cyclophosphamide given in the 365 days before 2026-11-15 (1 '
     'administration(s)), at least 1500 mg.',
     1500, ('MedicationAdministration/a1',)),
    ('before-window', [adm(366, 1500, 'a1')], 'not-met',
     '0 mg of cyclophosphamide given in the 365 days before 2026-11-15 (0 administration(s)), '
     'below 1500 mg.',
     0, ()),
    ('after-as-of', [med_admin(RX_CYC, '2026-11-20', dose=(1500, 'mg'), mid='a1')], 'not-met',
     '0 mg of cyclophosphamide given in the 365 days before 2026-11-15 (0 administration(s)), '
     'below 1500 mg.',
     0, ()),
    ('per-kg-with-weight', [adm(30, 25, 'a1', 'mg/kg'), kg(60)], 'met',
     '1500 mg of cyclophosphamide given in the 365 days before 2026-11-15 (1 '
     'administration(s)), at least 1500 mg.',
     1500, ('MedicationAdministration/a1',)),
    ('per-kg-without-weight', [adm(30, 25, 'a1', 'mg/kg'), adm(60, 500, 'a2')], 'unknown',
     '500 mg of cyclophosphamide given in the 365 days before 2026-11-15 (2 administration(s)); '
     'the dose of MedicationAdministration/a1 is not recorded.',
     500, ('MedicationAdministration/a2', 'MedicationAdministration/a1')),
    ('dose-missing', [adm(30, None, 'a1'), adm(60, 500, 'a2')], 'unknown',
     '500 mg of cyclophosphamide given in the 365 days before 2026-11-15 (2 administration(s)); '
     'the dose of MedicationAdministration/a1 is not recorded.',
     500, ('MedicationAdministration/a2', 'MedicationAdministration/a1')),
    ('only-ordered', [med_request(RX_CYC, day(60), day(30), dose=(500, 'mg'), mid='r1')], 'unknown',
     '0 mg of cyclophosphamide given in the 365 days before 2026-11-15 (0 administration(s)); '
     'cyclophosphamide is ordered or recorded as taken (MedicationRequest/r1) but its '
     'administrations are not recorded.',
     0, ('MedicationRequest/r1',)),
    ('ordered-long-ago', [med_request(RX_CYC, day(800), day(700), dose=(500, 'mg'), mid='r1')],
         'not-met',
     '0 mg of cyclophosphamide given in the 365 days before 2026-11-15 (0 administration(s)), '
     'below 1500 mg.',
     0, ()),
    ('ordered-undated', [med_request(RX_CYC, None, None, dose=(500, 'mg'), mid='r1',
         authored=None) ], 'unknown',
     '0 mg of cyclophosphamide given in the 365 days before 2026-11-15 (0 administration(s)); '
     'cyclophosphamide is ordered or recorded as taken (MedicationRequest/r1) but its '
     'administrations are not recorded.',
     0, ('MedicationRequest/r1',)),
    ('nothing', [], 'not-met',
     '0 mg of cyclophosphamide given in the 365 days before 2026-11-15 (0 administration(s)), '
     'below 1500 mg.',
     0, ()),
    ('admin-and-order', [adm(30, 500, 'a1'), med_request(RX_CYC, day(60), day(30), dose=(500,
         'mg'), mid='r1')], 'unknown',
     '500 mg of cyclophosphamide given in the 365 days before 2026-11-15 (1 administration(s)); '
     'cyclophosphamide is ordered or recorded as taken (MedicationRequest/r1) but its '
     'administrations are not recorded.',
     500, ('MedicationAdministration/a1', 'MedicationRequest/r1')),
    ('reached-with-unknown', [adm(30, 1500, 'a1'), adm(60, None, 'a2')], 'met',
     '1500 mg of cyclophosphamide given in the 365 days before 2026-11-15 (2 '
     'administration(s)), at least 1500 mg.',
     1500, ('MedicationAdministration/a2', 'MedicationAdministration/a1')),
    # Doses per kg of a series: each administration's amount, summed.
    ("per-kg-series", [adm(60, 12.5, "a1", "mg/kg"), adm(30, 12.5, "a2", "mg/kg"), kg(60)],
     "met", "1500 mg of cyclophosphamide given in the 365 days before 2026-11-15 "
     "(2 administration(s)), at least 1500 mg.", 1500,
     ("MedicationAdministration/a1", "MedicationAdministration/a2")),
    ("two-unknown-doses", [adm(30, None, "a1"), adm(60, None, "a2")], "unknown",
     "0 mg of cyclophosphamide given in the 365 days before 2026-11-15 (2 administration(s)); "
     "the dose of MedicationAdministration/a2, MedicationAdministration/a1 is not recorded.", 0,
     ("MedicationAdministration/a2", "MedicationAdministration/a1")),
    ("on-the-as-of-day", [med_admin(RX_CYC, AS_OF.isoformat(), dose=(1500, "mg"), mid="a1")],
     "met", "1500 mg of cyclophosphamide given in the 365 days before 2026-11-15 "
     "(1 administration(s)), at least 1500 mg.", 1500, ("MedicationAdministration/a1",)),
    # An order reaching into the window (by its end) leaves the administrations to be shown.
    ("order-ending-on-first-day",
     [med_request(RX_CYC, day(400), day(365), dose=(500, "mg"), mid="r1")], "unknown",
     "0 mg of cyclophosphamide given in the 365 days before 2026-11-15 (0 administration(s)); "
     "cyclophosphamide is ordered or recorded as taken (MedicationRequest/r1) but its "
     "administrations are not recorded.", 0, ("MedicationRequest/r1",)),
    ("order-ending-the-day-before",
     [med_request(RX_CYC, day(400), day(366), dose=(500, "mg"), mid="r1")], "not-met",
     "0 mg of cyclophosphamide given in the 365 days before 2026-11-15 (0 administration(s)), "
     "below 1500 mg.", 0, ()),
    # A body weight of 1 kg converts a dose per kg; a weight of 0 does not.
    ("per-kg-one-kg", [adm(30, 25, "a1", "mg/kg"), kg(1)], "not-met",
     "25 mg of cyclophosphamide given in the 365 days before 2026-11-15 (1 administration(s)), "
     "below 1500 mg.", 25, ("MedicationAdministration/a1",)),
    ("per-kg-zero-weight", [adm(30, 25, "a1", "mg/kg"), kg(0)], "unknown",
     "0 mg of cyclophosphamide given in the 365 days before 2026-11-15 (1 administration(s)); "
     "the dose of MedicationAdministration/a1 is not recorded.", 0,
     ("MedicationAdministration/a1",)),
    ("order-open-long-ago",
     [med_request(RX_CYC, day(800), None, dose=(500, "mg"), mid="r1", status="completed")],
     "not-met", "0 mg of cyclophosphamide given in the 365 days before 2026-11-15 "
     "(0 administration(s)), below 1500 mg.", 0, ()),
]


@pytest.mark.parametrize(("resources", "expected", "reason", "mg", "evidence"),
                         [c[1:] for c in CUMULATIVE], ids=[c[0] for c in CUMULATIVE])
def test_cumulative_dose(rule_check, resources, expected, reason, mg, evidence):
    found = rule_check("cumulative-dose", CUM, resources)
    assert (found.result, found.reason, found.evidence) == (expected, reason, evidence)
    assert found.value == Value(Decimal(mg), "mg")


@pytest.mark.parametrize(("params", "weighed", "expected", "mg"), [
    (CUM, 365, "met", 1500),                                     # the default look-back: a year
    (CUM, 366, "unknown", 0),
    ({**CUM, "weight_lookback_days": 30}, 30, "met", 1500),       # the criterion's own
    ({**CUM, "weight_lookback_days": 30}, 31, "unknown", 0),
], ids=["365-days", "366-days", "own-30-days", "own-31-days"])
def test_a_cumulative_dose_per_kg_reads_a_body_weight_of_the_look_back(rule_check, params,
                                                                        weighed, expected, mg):
    found = rule_check("cumulative-dose", params, [adm(20, 25, "a1", "mg/kg"), kg(60, weighed)])
    assert (found.result, found.value) == (expected, Value(Decimal(mg), "mg"))
    if expected == "unknown":
        assert found.reason.endswith("the dose of MedicationAdministration/a1 is not recorded.")
