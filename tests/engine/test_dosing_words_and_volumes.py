"""Daily doses from frequencies in words (the mappings' vocabulary, and a vocabulary of a test's
own for its edges), doses in volumes through a solution's strength, per-kg daily units written
in code or unit, and events beside a frequency per other periods (found surviving by mutation
testing: docs/mutation-testing.md)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from service.engine.dosing import Dose, Strength, daily_dose
from service.engine.model import FrequencyPattern, FrequencyVocabulary


def mg(low: Any, high: Any = None, per_kg: bool = False) -> Dose:
    return Dose(Decimal(str(low)), Decimal(str(high if high is not None else low)), per_kg)


def dosage(value: Any = 10, unit: str = "mg", **timing: Any) -> dict[str, Any]:
    made: dict[str, Any] = {"doseAndRate": [{"doseQuantity": {"value": value, "code": unit}}]}
    if timing:
        made["timing"] = timing
    return made


def in_words(text: str) -> dict[str, Any]:
    return dosage(code={"text": text})


@pytest.mark.parametrize(("text", "expected"), [
    ("twice daily", mg(20)),
    ("  Twice   DAILY. ", mg(20)),                 # case, spaces and a full stop
    ("twice daily (BID)", mg(20)),                 # parts that agree
    ("bid.; with food", mg(20)),                   # a part with its own full stop
    ("daily (bid)", None),                         # parts that disagree
    ("with food", None),
    ("2 times daily", mg(20)),
    ("1 x daily", mg(10)),
    ("0 times daily", None),
    ("every 8 hours", mg(30)),
    ("every 1 hour", mg(240)),
    ("every 0 hours", None),
    ("every 2 days", mg(5)),
    ("every 4 weeks", mg(Decimal(10) / 28)),
    ("once weekly", mg(Decimal(10) / 7)),
    ("3 times a week", mg(Decimal(30) / 7)),
], ids=["phrase", "phrase-as-written", "parts-agree", "part-with-stop", "parts-disagree",
        "unknown", "n-times-daily", "once-as-a-number", "zero-times", "every-n-hours",
        "every-hour", "every-zero-hours", "every-n-days", "every-n-weeks", "weekly",
        "n-times-a-week"])
def test_a_frequency_in_words(mappings, text, expected):
    assert daily_dose(in_words(text), None, mappings.frequencies) == expected


def test_the_words_of_a_timing_code(mappings):
    local = {"system": "urn:local", "code": "x"}
    displayed = {"coding": [{**local, "display": "three times daily"}]}
    assert daily_dose(dosage(code=displayed), None, mappings.frequencies) == mg(30)
    # The text before a coding's display.
    both = {"text": "twice daily", "coding": [{**local, "display": "three times daily"}]}
    assert daily_dose(dosage(code=both), None, mappings.frequencies) == mg(20)
    # A repeat that says no frequency leaves it to the code's words.
    bounded = {"repeat": {"boundsPeriod": {"start": "2026-01-01"}}, "code": {"text": "bd"}}
    assert daily_dose(dosage(**bounded), None, mappings.frequencies) == mg(20)


def pattern(regex: str, frequency: Any, period: Any, unit: str = "d") -> FrequencyPattern:
    return FrequencyPattern(re.compile(regex), None if frequency is None else Decimal(frequency),
                            None if period is None else Decimal(period), unit)


# A vocabulary of the test's own: a phrase with a separator in it; a pattern without the group
# `n` it needs, then one that fits the same words; patterns with a zero frequency or period fall
# through to the next.
OWN = FrequencyVocabulary(phrases={"one tab, am": Decimal(1)}, patterns=(
    pattern(r"(?:per )?round", None, 1),
    pattern(r"round", 3, 1),
    pattern(r"(?:often )?tick", 0, 1),
    pattern(r"tick", 2, 1),
    pattern(r"(?:each )?tock", 1, 0),
    pattern(r"tock", 4, 1),
    pattern(r"(?P<n>\d+) a fortnight", None, 14),
))


@pytest.mark.parametrize(("text", "expected"), [
    ("round", mg(30)),
    ("tick", mg(20)),
    ("tock", mg(40)),
    ("7 a fortnight", mg(5)),
    ("One tab, AM.", mg(10)),      # a phrase with a comma is read whole, its full stop gone
], ids=["no-number-captured", "zero-frequency", "zero-period", "n-per-period",
        "phrase-with-a-comma"])
def test_a_vocabulary_at_its_edges(text, expected):
    assert daily_dose(in_words(text), None, OWN) == expected


@pytest.mark.parametrize(("value", "unit", "strength", "expected"), [
    (5, "mL", Strength(Decimal(2), per_ml=True), mg(10)),
    ("0.005", "L", Strength(Decimal(2), per_ml=True), mg(10)),
    (5, "mL", Strength(Decimal(2)), None),         # a strength per tablet says no mg per mL
    (5, "mL", None, None),
    (2, "{tbl}", Strength(Decimal(5), per_ml=True), None),   # a solution has no tablets
], ids=["ml", "litre", "strength-per-tablet", "no-strength", "tablets-of-a-solution"])
def test_a_dose_in_a_volume(value, unit, strength, expected):
    assert daily_dose(dosage(value, unit), strength) == expected


TWICE = {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}


def test_a_daily_amount_per_kg_is_known_by_its_code_or_its_low_end():
    coded = {"doseAndRate": [{"doseQuantity": {"value": 2, "code": "mg/kg/d", "unit": "mg/kg"}}],
             "timing": TWICE}
    assert daily_dose(coded, None) == mg(2, per_kg=True)
    low_daily = {"doseAndRate": [{"doseRange": {"low": {"value": 1, "code": "mg/kg/d"},
                                                "high": {"value": 2, "code": "mg/kg"}}}],
                 "timing": TWICE}
    assert daily_dose(low_daily, None) == mg(1, 2, per_kg=True)
    by_unit = {"doseAndRate": [{"doseRange": {"low": {"value": 1, "unit": "mg/kg/d"},
                                              "high": {"value": 2, "unit": "mg/kg"}}}],
               "timing": TWICE}
    assert daily_dose(by_unit, None) == mg(1, 2, per_kg=True)


def test_an_unreadable_end_of_a_range_makes_the_dose_unreadable():
    ranged = {"doseAndRate": [{"doseRange": {"low": {"value": 1, "code": "furlong"},
                                             "high": {"value": 2, "code": "mg"}}}]}
    assert daily_dose(ranged, None) is None


def test_an_entry_that_is_not_a_dose_does_not_end_the_search():
    given = {"doseAndRate": ["junk", {"doseQuantity": {"value": 10, "code": "mg"}}]}
    assert daily_dose(given, None) == mg(10)


@pytest.mark.parametrize(("repeat", "expected"), [
    ({"frequency": "abc"}, None),                 # a number written but unreadable
    ({"frequency": 2, "periodUnit": "d", "when": ["MORN", "EVE", "NIGHT"]}, mg(20, 30)),
    # Events bound a frequency per day only; per week, or per one to two days, they do not.
    ({"frequency": 1, "period": 1, "periodUnit": "wk", "when": ["MORN"]},
     mg(Decimal(10) / 7)),
    ({"frequency": 1, "period": 1, "periodMax": 2, "periodUnit": "d", "when": ["MORN", "EVE"]},
     mg(5, 10)),
], ids=["unreadable-frequency", "period-left-out", "per-week", "period-range"])
def test_events_beside_a_frequency(repeat, expected):
    assert daily_dose(dosage(repeat=repeat), None) == expected
