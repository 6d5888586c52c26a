"""The date a resource speaks for, from each element FHIR writes it in, and which wins; and the
clinical statuses that keep a Condition active."""

from __future__ import annotations

from datetime import date

import pytest

from service.engine.record import clinical_date, condition_active

ELEMENTS = ["effectiveDateTime", "effectiveInstant", "performedDateTime", "onsetDateTime",
            "occurrenceDateTime", "dateTime", "authoredOn", "recordedDate", "dateAsserted",
            "date", "issued"]
PERIODS = ["effectivePeriod", "performedPeriod", "onsetPeriod"]


@pytest.mark.parametrize("element", ELEMENTS)
def test_a_date_is_read_from_each_element_that_holds_one(element):
    found = clinical_date({element: "2026-03-04T10:00:00Z"})
    assert found is not None and found.day == date(2026, 3, 4)


@pytest.mark.parametrize("element", PERIODS)
def test_a_period_is_read_by_its_end_else_its_start(element):
    both = clinical_date({element: {"start": "2026-01-02", "end": "2026-02-03"}})
    start = clinical_date({element: {"start": "2026-01-02"}})
    assert both is not None and both.day == date(2026, 2, 3)
    assert start is not None and start.day == date(2026, 1, 2)


@pytest.mark.parametrize(("earlier", "later"), list(zip(ELEMENTS, ELEMENTS[1:], strict=False)))
def test_the_first_element_in_the_order_wins(earlier, later):
    found = clinical_date({later: "2025-01-01", earlier: "2026-01-01"})
    assert found is not None and found.day == date(2026, 1, 1)


def test_a_point_in_time_wins_over_a_period():
    found = clinical_date({"effectivePeriod": {"start": "2025-01-01"}, "issued": "2026-01-01"})
    assert found is not None and found.day == date(2026, 1, 1)


def _status(code: str) -> dict[str, object]:
    return {"clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                           "condition-clinical", "code": code}]}}


@pytest.mark.parametrize(("code", "active"), [
    ("active", True), ("recurrence", True), ("relapse", True), ("inactive", False),
    ("remission", False), ("resolved", False),
])
def test_the_clinical_statuses_that_keep_a_condition_active(code, active):
    assert condition_active(_status(code)) is active
    assert condition_active({}) is True
