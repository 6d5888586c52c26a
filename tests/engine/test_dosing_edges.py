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
