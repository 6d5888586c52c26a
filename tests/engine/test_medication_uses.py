"""Medication history read exactly: each resource's period (as written, from an order's validity,
timing bounds or supply, clipped at the as-of date), its daily dose, what it was given for, the
gap that joins it to a course, and administrations joined into a series with their doses
spread over it (found surviving by mutation testing: docs/mutation-testing.md)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from service.engine.medications import (
    MedicationUse,
    has_medication_history,
    longest_course,
    medication_uses,
)
from service.engine.model import Courses
from service.engine.record import build_record
from tests.support.builders import (
    AS_OF,
    RX_CYC,
    RX_PREDNISONE,
    RXNORM,
    SNOMED,
    UCUM,
    cc,
    condition,
    med_admin,
    patient,
)

PRED, CYC = ("prednisone",), ("cyclophosphamide",)
SUBJECT = {"reference": "Patient/p1"}


def read(mappings: Any, *resources: dict[str, Any], as_of: date = AS_OF) -> list[MedicationUse]:
    return medication_uses(build_record([patient(pid="p1"), *resources], mappings), mappings,
                           as_of)


def statement(mid: str = "s1", status: str = "completed", code: str = RX_PREDNISONE,
              **fields: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationStatement", "id": mid, "status": status,
            "subject": SUBJECT, "medicationCodeableConcept": cc(code, RXNORM), **fields}


def request(mid: str = "r1", status: str = "active", **fields: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": mid, "status": status, "intent": "order",
            "subject": SUBJECT, "medicationCodeableConcept": cc(RX_PREDNISONE, RXNORM),
            **fields}


def duration(value: Any, unit: str | None = None, code: str | None = None) -> dict[str, Any]:
    made: dict[str, Any] = {"value": value}
    if unit is not None:
        made["unit"] = unit
    if code is not None:
        made["code"] = code
    return made


def use(ref: str, start: str | None, end: str | None, mg: Any = None, concepts=PRED,
        **fields: Any) -> MedicationUse:
    return MedicationUse(ref, concepts, date.fromisoformat(start) if start else None,
                         date.fromisoformat(end) if end else None,
                         Decimal(str(mg)) if mg is not None else None,
                         daily_mg_range=(Decimal(str(mg)), Decimal(str(mg))) if mg is not None
                         else None, **fields)


MS, MR = "MedicationStatement/s1", "MedicationRequest/r1"
AUTHORED = "2026-06-01"


@pytest.mark.parametrize(("resource", "expected"), [
    # effectivePeriod: a partial start counts from its first day, a partial end to its last.
    (statement(effectivePeriod={"start": "2026-09", "end": "2026-10"}),
     use(MS, "2026-09-01", "2026-10-31")),
    (statement(effectivePeriod={"start": "2026-09-10", "end": "2027-01-01"}),
     use(MS, "2026-09-10", "2026-11-15")),                    # a later end is cut at as-of
    (statement(status="active", effectivePeriod={"start": "2026-09-10"}),
     use(MS, "2026-09-10", "2026-11-15")),                    # ongoing: runs to as-of
    (statement(status="on-hold", effectivePeriod={"start": "2026-09-10"}),
     use(MS, "2026-09-10", "2026-11-15")),
    (statement(effectivePeriod={"start": "2026-09-10"}),      # completed, no end: unknown
     use(MS, "2026-09-10", None)),
    (statement(status="active", effectivePeriod={"start": "2026-09-10", "end": "2026-10-01"}),
     use(MS, "2026-09-10", "2026-10-01")),
    (statement(effectivePeriod={"start": "2026-10-10", "end": "2026-10-01"}),
     use(MS, None, None)),                                    # an end before the start
    (statement(effectivePeriod={"end": "2026-10-01"}), use(MS, None, "2026-10-01")),
    (statement(status="active", effectivePeriod={"end": "2026-10-01"}),
     use(MS, None, "2026-10-01")),
    (statement(status="active", effectivePeriod={}), use(MS, None, None)),
    (statement(effectivePeriod={"start": "2026-11-15", "end": "2026-11-20"}),
     use(MS, "2026-11-15", "2026-11-15")),                    # starts on the as-of day
    # A single date says when, not how long, even for a drug still taken.
    (statement(status="active", effectiveDateTime="2026-10-01T08:00:00Z"),
     use(MS, "2026-10-01", None)),
    (statement(status="active"), use(MS, None, None)),
    (statement(status="active", effectiveDateTime="soon"), use(MS, None, None)),
], ids=["partial-dates", "end-cut-at-as-of", "ongoing", "on-hold", "completed-open",
        "active-with-end", "end-before-start", "end-only", "active-end-only", "empty-period",
        "starts-on-as-of", "single-date", "no-date", "unreadable-date"])
def test_a_statements_period(mappings, resource, expected):
    assert read(mappings, resource) == [expected]


@pytest.mark.parametrize(("fields", "start", "end"), [
    ({"dispenseRequest": {"validityPeriod": {"start": "2026-07-01", "end": "2026-08"}}},
     "2026-07-01", "2026-08-31"),
    ({"dispenseRequest": {"validityPeriod": {"start": "2026-07-01"}}}, "2026-07-01", "2026-11-15"),
    # A validity without a start gives way to the timing, then the authored date.
    ({"dispenseRequest": {"validityPeriod": {"end": "2026-08-01"}}}, AUTHORED, "2026-11-15"),
    ({"dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"start": "2026-07-01",
                                                                     "end": "2026-07-31"}}}}]},
     "2026-07-01", "2026-07-31"),
    ({"dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"end": "2026-07-31"}}}}]},
     AUTHORED, "2026-07-31"),
    ({"dosageInstruction": ["text", {"timing": {"repeat": {"boundsPeriod": {
        "start": "2026-07-01"}}}}]}, "2026-07-01", "2026-11-15"),
    ({"dosageInstruction": [{"timing": {"repeat": {"boundsDuration": duration(10, code="d")}}}]},
     AUTHORED, "2026-06-11"),
    ({"dosageInstruction": [{"timing": {"repeat": {"boundsDuration": duration(-1, code="d")}}},
                            {"timing": {"repeat": {"boundsDuration": duration(3, code="d")}}}]},
     AUTHORED, "2026-06-04"),
    ({"dispenseRequest": {"expectedSupplyDuration": duration(30, code="d")}},
     AUTHORED, "2026-07-01"),
    ({"dispenseRequest": {"expectedSupplyDuration": duration(30, code="d"),
                          "numberOfRepeatsAllowed": 2}}, AUTHORED, "2026-08-30"),
    ({"dispenseRequest": {"expectedSupplyDuration": duration(30, code="d"),
                          "numberOfRepeatsAllowed": 1}}, AUTHORED, "2026-07-31"),
    ({"dispenseRequest": {"expectedSupplyDuration": duration(30, code="d"),
                          "numberOfRepeatsAllowed": 0}}, AUTHORED, "2026-07-01"),
    ({"dispenseRequest": {"expectedSupplyDuration": duration(30, code="d"),
                          "numberOfRepeatsAllowed": -2}}, AUTHORED, "2026-07-01"),
    ({"dispenseRequest": {"expectedSupplyDuration": duration(30, code="d"),
                          "numberOfRepeatsAllowed": "2"}}, AUTHORED, "2026-07-01"),
    ({"dispenseRequest": {"expectedSupplyDuration": duration(0, code="d")}}, AUTHORED, AUTHORED),
    ({}, AUTHORED, "2026-11-15"),                             # authored, still active
], ids=["validity", "validity-open", "validity-without-start", "bounds", "bounds-from-authored",
        "bounds-after-junk", "bounds-duration", "first-readable-duration", "supply",
        "supply-and-repeats", "one-repeat", "no-repeats", "negative-repeats",
        "repeats-not-a-number", "zero-supply", "authored-only"])
def test_an_orders_period(mappings, fields, start, end):
    assert read(mappings, request(authoredOn=AUTHORED, **fields)) == [use(MR, start, end)]


def test_an_order_without_any_date(mappings):
    assert read(mappings, request(status="completed")) == [use(MR, None, None)]
    bounds = {"dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"end": "2026-07-31"},
                                                           "boundsDuration": duration(5, "d")}}}]}
    assert read(mappings, request(status="completed", **bounds)) == [use(MR, None, None)]
    completed_from_authored = request(status="completed", authoredOn=AUTHORED)
    assert read(mappings, completed_from_authored) == [use(MR, AUTHORED, None)]
    # A completed order with an open validity or open bounds: its end is unknown.
    open_validity = request(status="completed",
                            dispenseRequest={"validityPeriod": {"start": "2026-07-01"}})
    assert read(mappings, open_validity) == [use(MR, "2026-07-01", None)]
    open_bounds = request(status="completed", dosageInstruction=[
        {"timing": {"repeat": {"boundsPeriod": {"start": "2026-07-01"}}}}])
    assert read(mappings, open_bounds) == [use(MR, "2026-07-01", None)]


@pytest.mark.parametrize(("written", "days"), [
    (duration(2, code="wk"), 14), (duration(1, code="mo"), 30), (duration(1, code="a"), 365),
    (duration(36, code="h"), 1), (duration(2.5, code="wk"), 17), (duration(1, unit="a"), 365),
    (duration(3, unit="Days"), 3), (duration(3, unit="day"), 3), (duration(2, unit="week"), 14),
    (duration(2, unit="weeks"), 14), (duration(2, unit="month"), 60),
    (duration(2, unit="months"), 60), (duration(2, unit="wk", code="d"), 2),
    (duration(2, unit="fortnight"), None), (duration(None, code="d"), None),
    (duration(-2, code="d"), None), ({"value": 2, "code": 7}, None), ("2 weeks", None),
    (duration("x", code="d"), None), ({"value": 2, "code": ["d"]}, None),
], ids=["weeks", "month", "year", "hours-cut-to-days", "fraction-cut", "ucum-as-unit",
        "words-any-case", "day", "week", "weeks-word", "month-word", "months-word",
        "code-before-unit", "unknown-word", "no-value", "negative", "code-not-text",
        "not-a-duration", "unreadable-value", "code-a-list"])
def test_a_duration_in_days(mappings, written, days):
    order = request(status="completed", authoredOn=AUTHORED,
                    dispenseRequest={"expectedSupplyDuration": written})
    end = (date.fromisoformat(AUTHORED).toordinal() + days) if days is not None else None
    assert read(mappings, order, as_of=date(2030, 1, 1)) == [
        use(MR, AUTHORED, date.fromordinal(end).isoformat() if end else None)]


@pytest.mark.parametrize(("rtype", "status", "kept"), [
    ("MedicationRequest", "active", True), ("MedicationRequest", "completed", True),
    ("MedicationRequest", "stopped", True), ("MedicationRequest", "on-hold", True),
    ("MedicationRequest", "draft", False), ("MedicationRequest", "cancelled", False),
    ("MedicationStatement", "active", True), ("MedicationStatement", "completed", True),
    ("MedicationStatement", "stopped", True), ("MedicationStatement", "on-hold", True),
    ("MedicationStatement", "not-taken", False), ("MedicationStatement", "intended", False),
    ("MedicationAdministration", "completed", True),
    ("MedicationAdministration", "in-progress", True),
    ("MedicationAdministration", "on-hold", True), ("MedicationAdministration", "stopped", True),
    ("MedicationAdministration", "not-done", False),
    ("MedicationAdministration", "entered-in-error", False),
])
def test_which_statuses_say_the_drug_was_taken(mappings, rtype, status, kept):
    resource = {"resourceType": rtype, "id": "x1", "status": status, "intent": "order",
                "subject": SUBJECT, "medicationCodeableConcept": cc(RX_PREDNISONE, RXNORM),
                "effectivePeriod": {"start": "2026-09-01", "end": "2026-09-05"},
                "authoredOn": "2026-09-01"}
    found = read(mappings, resource)
    assert [u.ref for u in found] == ([f"{rtype}/x1"] if kept else [])
    assert has_medication_history(build_record([patient(pid="p1"), resource], mappings)) == (
        status not in {"entered-in-error", "cancelled", "draft", "not-taken", "not-done"})


@pytest.mark.parametrize(("intent", "kept"), [("order", True), ("original-order", True),
                                              ("proposal", False), ("plan", False)])
def test_only_orders_are_taken(mappings, intent, kept):
    found = read(mappings, request(intent=intent, authoredOn=AUTHORED))
    assert [u.ref for u in found] == ([MR] if kept else [])


def test_no_medication_resource_is_no_history(mappings):
    assert not has_medication_history(build_record([patient(pid="p1")], mappings))


def test_a_use_after_the_as_of_date_is_not_history(mappings):
    later = statement(effectivePeriod={"start": "2026-11-16", "end": "2026-11-20"})
    assert read(mappings, later) == []
    assert read(mappings, later, as_of=date(2026, 11, 16)) == [use(MS, "2026-11-16", "2026-11-16")]


def test_what_the_drug_was_given_for(mappings):
    sle = condition("55464009", cid="c1")
    given = statement(reasonCode=[cc("27503000", SNOMED)],
                      reasonReference=[{"reference": "Condition/gone"},
                                       {"reference": "Condition/c1"}, {"reference": "#c2"}],
                      contained=[condition("26889001", cid="c2")],
                      effectivePeriod={"start": "2026-09-01", "end": "2026-09-05"})
    assert read(mappings, given, sle) == [
        use(MS, "2026-09-01", "2026-09-05", reasons=("gilbert", "sle", "myositis"))]
    # Known only by what it was given for: kept for the rules that read indications.
    uncoded = statement(reasonCode=[cc("55464009", SNOMED)])
    uncoded["medicationCodeableConcept"] = {"text": "an unknown drug"}
    assert read(mappings, uncoded) == [use(MS, None, None, concepts=(), reasons=("sle",))]
    unknown = statement()
    unknown["medicationCodeableConcept"] = {"text": "an unknown drug"}
    assert read(mappings, unknown) == []


def dosed(dosage: Any, **fields: Any) -> dict[str, Any]:
    return statement(effectivePeriod={"start": "2026-09-01", "end": "2026-09-05"}, dosage=dosage,
                     **fields)


def mg(value: Any, unit: str = "mg") -> dict[str, Any]:
    return {"doseAndRate": [{"doseQuantity": {"value": value, "unit": unit, "system": UCUM,
                                              "code": unit}}]}


@pytest.mark.parametrize(("dosage", "fields"), [
    ([mg(10)], {"daily_mg": Decimal(10), "daily_mg_range": (Decimal(10), Decimal(10))}),
    (mg(10), {"daily_mg": Decimal(10), "daily_mg_range": (Decimal(10), Decimal(10))}),
    (["text", {"text": "no dose"}, mg(10)],
     {"daily_mg": Decimal(10), "daily_mg_range": (Decimal(10), Decimal(10))}),
    ([mg(1, "mg/kg")], {"daily_mg_per_kg": Decimal(1),
                        "daily_mg_per_kg_range": (Decimal(1), Decimal(1))}),
    ([{"doseAndRate": [{"doseRange": {"low": {"value": 5, "code": "mg"},
                                      "high": {"value": 10, "code": "mg"}}}]}],
     {"daily_mg_range": (Decimal(5), Decimal(10))}),
    ([{"doseAndRate": [{"doseRange": {"low": {"value": 1, "code": "mg/kg"},
                                      "high": {"value": 2, "code": "mg/kg"}}}]}],
     {"daily_mg_per_kg_range": (Decimal(1), Decimal(2))}),
    ([{"text": "as needed"}], {}),
    ("10 mg", {}),
], ids=["dose", "one-object", "first-readable", "per-kg", "range", "per-kg-range", "no-dose",
        "not-a-dosage"])
def test_the_daily_dose_of_a_use(mappings, dosage, fields):
    assert read(mappings, dosed(dosage)) == [
        replace(use(MS, "2026-09-01", "2026-09-05"), **fields)]


def admin(mid: str, when: str | None, mg: Any = 500, code: str = RX_CYC, **kw: Any
          ) -> dict[str, Any]:
    return med_admin(code, when, dose=(mg, "mg") if mg is not None else None, mid=mid, **kw)


def a(mid: str) -> str:
    return f"MedicationAdministration/{mid}"


def member(mid: str, start: str, end: str | None, given: Any, per_day: Any = None,
           gap: int = 35, concepts=CYC, **fields: Any) -> MedicationUse:
    made = use(a(mid), start, end, per_day, concepts=concepts, gap_days=gap, **fields)
    return replace(made, given_mg=Decimal(str(given)) if given is not None else None)


def test_administrations_form_a_series_and_spread_their_doses(mappings):
    found = read(mappings, admin("a2", "2026-09-30"), admin("a1", "2026-09-10"),
                 admin("a3", "2026-10-10", mg=300))
    assert found == [
        member("a1", "2026-09-10", "2026-09-30", 500, 25),      # 500 mg over 20 days
        member("a2", "2026-09-30", "2026-10-10", 500, 50),      # 500 mg over 10 days
        member("a3", "2026-10-10", "2026-10-10", 300, 30),      # the last: the interval before
    ]


def test_a_lone_administration_keeps_an_unknown_duration(mappings):
    assert read(mappings, admin("a1", "2026-09-10")) == [
        member("a1", "2026-09-10", None, 500, 500, gap=7)]


def test_administrations_further_apart_than_the_gap_are_separate(mappings):
    found = read(mappings, admin("a1", "2026-08-01"), admin("a2", "2026-09-05"),
                 admin("a3", "2026-10-11"))
    assert found == [member("a1", "2026-08-01", "2026-09-05", 500, Decimal(500) / 35),
                     member("a2", "2026-09-05", "2026-09-05", 500, Decimal(500) / 35),
                     member("a3", "2026-10-11", None, 500, 500, gap=7)]
    # A lone one first, then a series; sorted by date, not by id.
    found = read(mappings, admin("z", "2026-06-01"), admin("b", "2026-08-01"),
                 admin("a", "2026-08-11"))
    assert found == [member("z", "2026-06-01", None, 500, 500, gap=7),
                     member("b", "2026-08-01", "2026-08-11", 500, 50),
                     member("a", "2026-08-11", "2026-08-11", 500, 50)]


def test_administrations_on_one_day_share_it(mappings):
    found = read(mappings, admin("a2", "2026-09-10"), admin("a1", "2026-09-10"))
    assert found == [member("a1", "2026-09-10", "2026-09-10", 500, 500),
                     member("a2", "2026-09-10", "2026-09-10", 500, 500)]


def test_a_series_of_doses_per_kg_or_ranges_spreads_them_too(mappings):
    per_kg = admin("a1", "2026-09-10", mg=None)
    per_kg["dosage"] = {"dose": {"value": 20, "code": "mg/kg"}}
    ranged = admin("a2", "2026-09-20", mg=None)
    ranged["dosage"] = {"doseAndRate": [{"doseRange": {"low": {"value": 100, "code": "mg"},
                                                       "high": {"value": 200, "code": "mg"}}}]}
    found = read(mappings, per_kg, ranged)
    assert found == [
        MedicationUse(a("a1"), CYC, date(2026, 9, 10), date(2026, 9, 20), None, Decimal(2),
                      daily_mg_per_kg_range=(Decimal(2), Decimal(2)), gap_days=35,
                      given_mg_per_kg=Decimal(20)),
        MedicationUse(a("a2"), CYC, date(2026, 9, 20), date(2026, 9, 20), None, None,
                      daily_mg_range=(Decimal(10), Decimal(20)), gap_days=35)]


def test_series_are_per_agent_and_an_undated_administration_stays_alone(mappings):
    found = read(mappings, admin("a1", "2026-09-10"), admin("p1", "2026-09-20", 20, RX_PREDNISONE),
                 admin("a2", "2026-09-20"), admin("a3", None, 100))
    assert found == [
        member("a3", None, None, 100, 100, gap=35),
        member("a1", "2026-09-10", "2026-09-20", 500, 50),
        member("a2", "2026-09-20", "2026-09-20", 500, 50),
        member("p1", "2026-09-20", None, 20, 20, gap=7, concepts=PRED),
    ]


def test_an_administration_over_days_is_a_use_of_its_own(mappings):
    over = admin("a1", None, start="2026-09-01", end="2026-09-03")
    within = admin("a2", None, start="2026-09-10T08:00:00Z", end="2026-09-10T10:00:00Z")
    assert read(mappings, over, within) == [
        member("a1", "2026-09-01", "2026-09-03", 500, 500),
        member("a2", "2026-09-10", None, 500, 500, gap=7)]


def test_the_gap_of_a_course(mappings):
    routed = Courses(gap_days=3, administration_gap_days=20,
                     routes={"http://snomed.info/sct|78421000": 90})
    site = replace(mappings, courses=routed)
    route = {"route": cc("78421000", SNOMED)}
    pred = statement(effectivePeriod={"start": "2026-09-01", "end": "2026-09-05"})
    by_route = statement("s2", effectivePeriod={"start": "2026-09-01", "end": "2026-09-05"},
                         dosage=["text", {"route": {"coding": [{"code": "x"}]}}, route])
    own = statement("s3", code=RX_CYC, dosage=[route],
                    effectivePeriod={"start": "2026-09-01", "end": "2026-09-05"})
    over = admin("a1", None, start="2026-09-01", end="2026-09-03", code=RX_PREDNISONE)
    routed_admin = admin("a2", None, start="2026-09-01", end="2026-09-03", code=RX_PREDNISONE)
    routed_admin["dosage"]["route"] = cc("78421000", SNOMED)
    other_route = statement("s4", dosage=[{"route": cc("26643006", SNOMED)}],
                            effectivePeriod={"start": "2026-09-01", "end": "2026-09-05"})
    order = request(authoredOn=AUTHORED, dosageInstruction=[route])
    gaps = {u.ref: u.gap_days for u in read(site, pred, by_route, own, over, routed_admin,
                                             other_route, order)}
    assert gaps == {MS: 3, "MedicationStatement/s2": 90, "MedicationStatement/s3": 35,
                    "MedicationStatement/s4": 3, a("a1"): 20, a("a2"): 90, MR: 90}


def test_a_series_joins_by_the_site_gap_for_administrations(mappings):
    site = replace(mappings, courses=Courses(gap_days=3, administration_gap_days=20))
    found = read(site, admin("a1", "2026-09-01", code=RX_PREDNISONE),
                 admin("a2", "2026-09-21", code=RX_PREDNISONE),
                 admin("a3", "2026-10-12", code=RX_PREDNISONE))
    assert [(u.ref, u.end, u.gap_days) for u in found] == [
        (a("a1"), date(2026, 9, 21), 20), (a("a2"), date(2026, 9, 21), 20),
        (a("a3"), None, 7)]


def span(ref: str, start: str, end: str, gap: int = 7) -> MedicationUse:
    return use(ref, start, end, gap_days=gap)


@pytest.mark.parametrize(("uses", "expected"), [
    ([], (0, ())),
    ([span("x", "2026-01-01", "2026-01-31")], (30, ("x",))),
    ([span("x", "2026-01-01", "2026-01-31"), span("y", "2026-02-07", "2026-02-17")],
     (47, ("x", "y"))),                                     # 7 days apart: one course
    ([span("x", "2026-01-01", "2026-01-31"), span("y", "2026-02-08", "2026-02-28")],
     (30, ("x",))),                                         # 8 days apart: two
    ([span("x", "2026-01-01", "2026-01-31"), span("y", "2026-02-08", "2026-02-28", gap=8)],
     (58, ("x", "y"))),                                     # the later use's own gap
    ([span("y", "2026-01-05", "2026-01-10"), span("x", "2026-01-01", "2026-01-31")],
     (30, ("x",))),                                         # inside another: no longer
    ([span("x", "2026-01-01", "2026-01-11"), use("u", "2026-01-01", None),
      span("z", "2026-03-01", "2026-03-21")], (20, ("z",))),
], ids=["none", "one", "gap-of-seven-joins", "gap-of-eight-splits", "later-uses-own-gap",
        "inside-another", "open-use-left-out"])
def test_the_longest_course(uses, expected):
    assert longest_course(uses) == expected


def test_a_resource_left_out_does_not_end_the_reading(mappings):
    period = {"effectivePeriod": {"start": "2026-09-01", "end": "2026-09-05"}}
    unknown = statement("s0", **period)
    unknown["medicationCodeableConcept"] = {"text": "an unknown drug"}
    found = read(mappings, statement("s1", status="not-taken", **period), unknown,
                 statement("s2", effectivePeriod={"start": "2026-12-01"}),
                 statement("s3", **period),
                 request("r0", intent="plan"), request("r1", authoredOn=AUTHORED, status="draft"),
                 request("r2", authoredOn=AUTHORED))
    assert [u.ref for u in found] == ["MedicationRequest/r2", "MedicationStatement/s3"]


def test_an_orders_dose_and_a_products_strength_and_frequency_in_words(mappings):
    tablets = {"doseAndRate": [{"doseQuantity": {"value": 2, "code": "{tbl}"}}],
               "timing": {"code": {"text": "twice daily"}}}
    order = request(authoredOn=AUTHORED, dosageInstruction=[tablets])
    order["medicationCodeableConcept"] = cc("312615", RXNORM)   # prednisone 20 mg tablet
    told = statement(dosage=[tablets], effectivePeriod={"start": "2026-09-01", "end": "2026-09-05"})
    told["medicationCodeableConcept"] = cc("312615", RXNORM)
    assert read(mappings, order, told) == [use(MR, AUTHORED, "2026-11-15", 80),
                                           use(MS, "2026-09-01", "2026-09-05", 80)]
