"""Daily doses at the edges of what Dosage can say: each case names the exact mg/day expected,
so a frequency read the wrong way round (24 * n instead of 24 / n) or an edge let through is
caught (found surviving by mutation testing: docs/mutation-testing.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from service.engine.dosing import Dose, Strength, daily_dose

GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"


def dosage(value: Any = 10, unit: str = "mg", **timing: Any) -> dict[str, Any]:
    made: dict[str, Any] = {"doseAndRate": [{"doseQuantity": {"value": value, "unit": unit}}]}
    if timing:
        made["timing"] = timing
    return made


def code(token: str) -> dict[str, Any]:
    return {"code": {"coding": [{"system": GTS, "code": token}]}}


def mg(low: Any, high: Any = None, per_kg: bool = False) -> Dose:
    return Dose(Decimal(str(low)), Decimal(str(high if high is not None else low)), per_kg)


@pytest.mark.parametrize(("given", "expected"), [
    # Every n hours: 24 / n administrations a day, at the ends of 0 < n <= 24 too.
    (dosage(**code("Q6H")), mg(40)),
    (dosage(**code("Q8H")), mg(30)),
    (dosage(**code("Q12H")), mg(20)),
    (dosage(**code("Q24H")), mg(10)),
    (dosage(**code("Q1H")), mg(240)),
    (dosage(**code("Q0H")), None),
    (dosage(**code("Q25H")), None),
    (dosage(**code("q.12h")), mg(20)),  # spelled with a dot and in lower case
    (dosage(**code("BID")), mg(20)),
    (dosage(**code("QOD")), mg(5)),
    (dosage(**code("WK")), mg(Decimal(10) / 7)),
    (dosage(**code("XYZ")), None),  # a code that says no frequency: unreadable, not once a day
    (dosage(), mg(10)),  # no timing at all: one administration
], ids=["q6h", "q8h", "q12h", "q24h", "q1h", "q0h", "q25h", "q12h-dotted", "bid", "qod", "wk",
        "unknown-code", "no-timing"])
def test_timing_codes(given, expected):
    assert daily_dose(given, None) == expected


@pytest.mark.parametrize(("repeat", "expected"), [
    ({"frequency": 3, "period": 1, "periodUnit": "d"}, mg(30)),
    ({"frequency": 1, "period": 12, "periodUnit": "h"}, mg(20)),
    ({"frequency": 1, "period": 2, "periodUnit": "d"}, mg(5)),
    ({"frequency": 2, "frequencyMax": 3, "period": 1, "periodUnit": "d"}, mg(20, 30)),
    ({"frequency": 1, "period": 8, "periodMax": 12, "periodUnit": "h"}, mg(20, 30)),
    ({"frequency": 1, "period": 1, "periodUnit": "wk"}, mg(Decimal(10) / 7)),
    ({"frequency": 0, "period": 1, "periodUnit": "d"}, None),
    ({"frequency": 1, "period": 0, "periodUnit": "d"}, None),
    ({"frequency": -1, "period": 1, "periodUnit": "d"}, None),
    ({"frequency": 1, "period": 1, "periodUnit": "fortnight"}, None),
    # Events named per day: two a day without a frequency.
    ({"when": ["MORN", "EVE"]}, mg(20)),
    ({"timeOfDay": ["08:00:00", "14:00:00", "20:00:00"]}, mg(30)),
    # "With meals" does not say how many: unreadable.
    ({"when": ["C"]}, None),
    # Once a day "morning and evening": the events and the frequency disagree, both bound it.
    ({"frequency": 1, "period": 1, "periodUnit": "d", "when": ["MORN", "EVE"]}, mg(10, 20)),
    ({"frequency": 3, "period": 1, "periodUnit": "d", "when": ["MORN"]}, mg(10, 30)),
], ids=["tid", "every-12h", "every-2d", "freq-range", "period-range", "weekly", "zero-freq",
        "zero-period", "negative-freq", "bad-unit", "two-events", "three-times", "with-meals",
        "events-above-freq", "freq-above-events"])
def test_timing_repeat(repeat, expected):
    assert daily_dose(dosage(repeat=repeat), None) == expected


@pytest.mark.parametrize(("value", "unit", "strength", "expected"), [
    (1, "g", None, mg(1000)),
    (500, "ug", None, mg("0.5")),
    (0, "mg", None, mg(0)),
    (-5, "mg", None, None),  # a negative dose is not a dose
    (2, "{tbl}", Strength(Decimal(5)), mg(10)),
    (2, "tablet", None, None),  # tablets without the strength: unreadable
    (1, "mg/kg", None, mg(1, per_kg=True)),
    (2, "mg/kg/d", None, mg(2, per_kg=True)),  # already a daily amount per kg
    (1, "furlong", None, None),
], ids=["g", "ug", "zero", "negative", "tablets", "tablets-no-strength", "mg-per-kg",
        "mg-per-kg-per-day", "not-a-unit"])
def test_dose_quantities(value, unit, strength, expected):
    assert daily_dose(dosage(value, unit), strength) == expected


def test_per_kg_doses_are_multiplied_by_the_frequency_unless_already_daily():
    twice = {"frequency": 2, "period": 1, "periodUnit": "d"}
    assert daily_dose(dosage(1, "mg/kg", repeat=twice), None) == mg(2, per_kg=True)
    assert daily_dose(dosage(1, "mg/kg/day", repeat=twice), None) == mg(1, per_kg=True)


def test_a_dose_range_gives_both_ends_and_an_open_range_is_unreadable():
    ranged = {"doseAndRate": [{"doseRange": {"low": {"value": 5, "unit": "mg"},
                                             "high": {"value": 10, "unit": "mg"}}}],
              "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}}
    assert daily_dose(ranged, None) == mg(10, 20)
    open_range = {"doseAndRate": [{"doseRange": {"high": {"value": 20, "unit": "mg"}}}]}
    assert daily_dose(open_range, None) is None
    upside_down = {"doseAndRate": [{"doseRange": {"low": {"value": 10, "unit": "mg"},
                                                  "high": {"value": 5, "unit": "mg"}}}]}
    assert daily_dose(upside_down, None) is None
    mixed = {"doseAndRate": [{"doseRange": {"low": {"value": 1, "unit": "mg/kg"},
                                            "high": {"value": 10, "unit": "mg"}}}]}
    assert daily_dose(mixed, None) is None


def test_a_medication_administration_dose_is_read():
    assert daily_dose({"dose": {"value": 750, "unit": "mg"}}, None) == mg(750)


@pytest.mark.parametrize(("timing", "expected"), [
    # A GTS code written without its system, or as the code's text.
    ({"code": {"coding": [{"code": "BID"}]}}, mg(20)),
    ({"code": {"text": "TID"}}, mg(30)),
    # A coding that is not a string is passed over, not the end of the search.
    ({"code": {"coding": [{"system": GTS, "code": 5}, {"system": GTS, "code": "BID"}]}},
     mg(20)),
    # A coding of another system is not read as a GTS abbreviation.
    ({"code": {"coding": [{"system": "urn:local", "code": "BID"}]}}, None),
    # Timing without repeat or code (only event dates): one administration a day.
    ({"event": ["2026-11-01T08:00:00Z"]}, mg(10)),
    # A frequency without its period is per one unit; a period without a frequency is once.
    ({"repeat": {"frequency": 2, "periodUnit": "d"}}, mg(20)),
    ({"repeat": {"period": 12, "periodUnit": "h"}}, mg(20)),
    ({"repeat": {"frequency": 3}}, mg(30)),
], ids=["no-system", "text", "non-string-first", "other-system", "events-only",
        "frequency-only", "period-only", "default-unit"])
def test_timing_as_ehrs_send_it(timing, expected):
    assert daily_dose(dosage(**timing), None) == expected


def test_the_ucum_code_of_a_dose_wins_over_its_display_unit():
    quantity = {"value": 1, "unit": "milligram", "code": "g"}
    assert daily_dose({"doseAndRate": [{"doseQuantity": quantity}]}, None) == mg(1000)
    no_code = {"value": 5, "unit": "mg"}
    assert daily_dose({"doseAndRate": [{"doseQuantity": no_code}]}, None) == mg(5)


@pytest.mark.parametrize(("timing", "expected"), [
    # A repeat that says neither frequency nor period nor events: the code decides.
    ({"repeat": {"boundsPeriod": {"start": "2026-11-01"}}, "code": {"text": "BID"}}, mg(20)),
    # Every 12 hours with a named event: the hours decide, the event does not bound them.
    ({"repeat": {"frequency": 1, "period": 12, "periodUnit": "h", "when": ["MORN"]}}, mg(20)),
    # Meals named without a count beside a frequency: the frequency decides.
    ({"repeat": {"frequency": 3, "period": 1, "periodUnit": "d", "when": ["C"]}}, mg(30)),
], ids=["repeat-without-frequency", "hours-and-an-event", "meals-and-a-frequency"])
def test_timing_whose_parts_say_different_things(timing, expected):
    assert daily_dose(dosage(**timing), None) == expected


def test_a_dose_without_a_unit_is_unreadable():
    assert daily_dose({"doseAndRate": [{"doseQuantity": {"value": 10}}]}, None) is None
