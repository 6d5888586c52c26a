"""Daily doses from FHIR Dosage: dose or dose range x administrations a day from Timing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from service.engine import units
from service.engine.model import FrequencyVocabulary
from service.engine.numbers import to_decimal
from service.engine.record import as_list, codings

# Exact fractions: once every 8 h is 3 a day, not 2.999... (a Decimal 1/24 is rounded, and a
# dose of 10 mg every 8 h must compare as 30 mg/day).
PERIOD_DAYS = {"s": Fraction(1, 86400), "min": Fraction(1, 1440), "h": Fraction(1, 24),
               "d": Fraction(1), "wk": Fraction(7), "mo": Fraction(30), "a": Fraction(365)}
TABLET_UNITS = {"{tbl}", "tbl", "tab", "tablet", "tablets", "{tablet}", "{tab}", "1"}

# Timing.code abbreviations (FHIR R4 value set timing-abbreviation, codes of
# http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation): administrations per day. Read only
# when Timing.repeat is absent (docs/decisions.md "Records as hospitals send them": frequencies
# come from timing.repeat, else timing.code). QnH (every n hours) is read by pattern below.
TIMING_CODES = {
    "QD": Decimal(1), "AM": Decimal(1), "PM": Decimal(1), "BED": Decimal(1),
    "BID": Decimal(2), "TID": Decimal(3), "QID": Decimal(4), "QOD": Decimal(1) / 2,
    "WK": Decimal(1) / 7, "MO": Decimal(1) / 30,
}
_EVERY_N_HOURS = re.compile(r"^Q(\d{1,2})H$")
GTS_SYSTEMS = {"http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation",
               "http://hl7.org/fhir/v3/GTSAbbreviation", "urn:oid:2.16.840.1.113883.5.1022"}
# Timing.repeat.when event codes that each stand for one administration a day (R4 event-timing:
# MORN, AFT, EVE, NIGHT and their early/late variants, meal-specific codes, HS and WAKE). The
# generic meal codes (C, AC, PC) do not say how many meals, so they do not give a count.
_DAILY_EVENTS = frozenset({
    "MORN", "MORN.early", "MORN.late", "NOON", "AFT", "AFT.early", "AFT.late", "EVE",
    "EVE.early", "EVE.late", "NIGHT", "PHS", "HS", "WAKE", "CM", "CD", "CV", "ACM", "ACD",
    "ACV", "PCM", "PCD", "PCV",
})

Range = tuple[Decimal, Decimal]


NO_VOCABULARY = FrequencyVocabulary()
_SPACES = re.compile(r"\s+")


def _timing_code_per_day(code: Any, vocabulary: FrequencyVocabulary = NO_VOCABULARY
                         ) -> Decimal | None:
    """Administrations per day of a Timing.code: a GTS abbreviation, else its text or a
    coding's display read by the mappings' frequency vocabulary; None when none says it."""
    candidates = [c.get("code") for c in codings(code)
                  if c.get("system") in GTS_SYSTEMS or c.get("system") is None]
    words = [c.get("display") for c in codings(code)]
    if isinstance(code, dict) and isinstance(code.get("text"), str):
        candidates.append(code["text"])
        words.insert(0, code["text"])
    for candidate in candidates:
        if not isinstance(candidate, str):
            continue
        token = candidate.strip().upper().replace(".", "")
        if token in TIMING_CODES:
            return TIMING_CODES[token]
        match = _EVERY_N_HOURS.match(token)
        if match and 0 < int(match.group(1)) <= 24:
            return Decimal(24) / int(match.group(1))
    for text in words:
        if isinstance(text, str):
            per_day = text_per_day(text, vocabulary)
            if per_day is not None:
                return per_day
    return None


def text_per_day(text: str, vocabulary: FrequencyVocabulary) -> Decimal | None:
    """Administrations a day of a frequency in words ("twice daily", "every 12 hours") by the
    vocabulary; None for text it does not know (the frequency stays unknown, docs/decisions.md)."""
    whole = _SPACES.sub(" ", text.strip().lower().rstrip(".")).strip()
    # "twice daily (BID)", "BID; with food": the whole text, else each part of it.
    parts = [whole] + [p.strip().rstrip(".").strip() for p in _PARTS.split(whole)]
    found = {_vocabulary_per_day(p, vocabulary) for p in dict.fromkeys(parts) if p}
    found.discard(None)
    if len(found) == 1:
        return found.pop()
    return None  # nothing known, or parts that disagree ("daily (twice)")


_PARTS = re.compile(r"[(),;]")


def _vocabulary_per_day(normal: str, vocabulary: FrequencyVocabulary) -> Decimal | None:
    if normal in vocabulary.phrases:
        return vocabulary.phrases[normal]
    for pattern in vocabulary.patterns:
        match = pattern.regex.fullmatch(normal)
        if not match:
            continue
        n = to_decimal(match.groupdict().get("n"))
        frequency = pattern.frequency if pattern.frequency is not None else n
        period = pattern.period if pattern.period is not None else n
        if frequency is None or period is None or frequency <= 0 or period <= 0:
            continue
        # Exact: every 8 hours is 3 a day (see PERIOD_DAYS).
        return _decimal(Fraction(frequency) / (Fraction(period) * PERIOD_DAYS[pattern.unit]))
    return None


_TIMING_NUMBERS = ("frequency", "frequencyMax", "period", "periodMax")


def _per_day(timing: Any, vocabulary: FrequencyVocabulary = NO_VOCABULARY) -> Range | None:
    """Administrations per day (low, high) from Timing; (1, 1) when no timing is given.

    frequency..frequencyMax per period..periodMax gives a range; repeat.when and timeOfDay
    count events a day; Timing.code is read when there is no repeat. None when the timing is
    present but cannot be read.
    """
    if not isinstance(timing, dict):
        return Decimal(1), Decimal(1)
    repeat = timing.get("repeat")
    if not isinstance(repeat, dict):
        return _code_per_day(timing, vocabulary)
    unit = repeat.get("periodUnit") or "d"
    if unit not in PERIOD_DAYS:
        return None
    if any(repeat.get(key) is not None and to_decimal(repeat.get(key)) is None
           for key in _TIMING_NUMBERS):
        return None  # a number written but unreadable ("abc", "1e999999"): not once a day
    frequency, period = to_decimal(repeat.get("frequency")), to_decimal(repeat.get("period"))
    daily_events = _daily_events(repeat)
    if daily_events is False:
        return None  # "with meals" without a count: how often is not said
    if frequency is None and period is None:
        if daily_events is not None:
            return Decimal(daily_events), Decimal(daily_events)
        return _code_per_day(timing, vocabulary)
    low, high = _frequency_range(repeat, frequency, period, PERIOD_DAYS[unit])
    if low is None or high is None:
        return None
    per_single_day = unit == "d" and (period is None or period == 1) and (
        repeat.get("periodMax") is None)
    if daily_events is not None and per_single_day:
        # Events named per day and a frequency: when they disagree (e.g. once a day "morning
        # and evening") either may be meant, so both bound the range.
        low, high = min(low, Decimal(daily_events)), max(high, Decimal(daily_events))
    return low, high


def _code_per_day(timing: dict[str, Any], vocabulary: FrequencyVocabulary) -> Range | None:
    if timing.get("code") is None:
        return Decimal(1), Decimal(1)
    per_day = _timing_code_per_day(timing.get("code"), vocabulary)
    return None if per_day is None else (per_day, per_day)


def _daily_events(repeat: dict[str, Any]) -> int | None | bool:
    """Events a day named by repeat.when or timeOfDay; None if none named, False if uncounted."""
    events = {w for w in as_list(repeat.get("when")) if isinstance(w, str)}
    if events:
        if events <= _DAILY_EVENTS:
            return len(events)
        return False if repeat.get("frequency") is None else None
    times = {t for t in as_list(repeat.get("timeOfDay")) if isinstance(t, str)}
    return len(times) if times else None


def _frequency_range(repeat: dict[str, Any], frequency: Decimal | None, period: Decimal | None,
                     unit_days: Fraction) -> tuple[Decimal | None, Decimal | None]:
    """(low, high) administrations per day from frequency(Max) per period(Max)."""
    low_f = frequency if frequency is not None else Decimal(1)
    frequency_max = to_decimal(repeat.get("frequencyMax"))
    high_f = frequency_max if frequency_max is not None and frequency_max >= low_f else low_f
    low_p = period if period is not None else Decimal(1)
    period_max = to_decimal(repeat.get("periodMax"))
    high_p = period_max if period_max is not None and period_max >= low_p else low_p
    if low_f <= 0 or low_p <= 0:
        return None, None
    return (_decimal(Fraction(low_f) / (Fraction(high_p) * unit_days)),
            _decimal(Fraction(high_f) / (Fraction(low_p) * unit_days)))


def _decimal(exact: Fraction) -> Decimal:
    return Decimal(exact.numerator) / Decimal(exact.denominator)


def _dose_quantities(dosage: dict[str, Any]) -> tuple[Any, Any] | None:
    """(low, high) Quantity of one Dosage: doseQuantity twice, or a doseRange's ends."""
    for item in as_list(dosage.get("doseAndRate")):
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("doseQuantity"), dict):
            return item["doseQuantity"], item["doseQuantity"]
        dose_range = item.get("doseRange")
        if isinstance(dose_range, dict):
            low, high = dose_range.get("low"), dose_range.get("high")
            if isinstance(low, dict) and isinstance(high, dict):
                return low, high
            return None  # an open range ("up to 20 mg") has no lower or upper end
    if isinstance(dosage.get("dose"), dict):  # MedicationAdministration
        return dosage["dose"], dosage["dose"]
    return None


@dataclass(frozen=True)
class Strength:
    """How much drug one unit of the product holds: mg per tablet (or other unit), or mg per
    mL for a solution (Medication.ingredient.strength, e.g. 5 mg/mL)."""

    mg: Decimal
    per_ml: bool = False


def _mg(quantity: dict[str, Any], strength: Strength | None) -> tuple[Decimal | None, bool]:
    """(amount in mg, written per kg) of one dose quantity; None when it cannot be read."""
    value = to_decimal(quantity.get("value"))
    unit = quantity.get("code") or quantity.get("unit")
    if value is None or value < 0:
        return None, False
    unit_text = unit.strip() if isinstance(unit, str) else ""
    if unit_text.lower() in ("mg/kg", "mg/kg/d", "mg/kg/day"):
        return value, True
    if unit_text.lower() in TABLET_UNITS:
        usable = strength is not None and not strength.per_ml
        return (value * strength.mg if usable and strength else None), False
    if units.convertible(unit_text, "mL", None):
        # A volume: mass only through the solution's strength (docs/decisions.md), else unknown.
        if strength is None or not strength.per_ml:
            return None, False
        return units.convert(value, unit_text, "mL") * strength.mg, False
    try:
        return units.convert(value, unit_text, "mg"), False
    except units.UnitError:
        return None, False


@dataclass(frozen=True)
class Dose:
    """Daily dose bounds of one Dosage, in mg/day or (when written per kg) mg/kg/day."""

    low: Decimal
    high: Decimal
    per_kg: bool


def daily_dose(dosage: dict[str, Any], strength: Strength | None,
               vocabulary: FrequencyVocabulary = NO_VOCABULARY) -> Dose | None:
    """The daily dose range of one Dosage (dose range x frequency range); None if unreadable."""
    quantities = _dose_quantities(dosage)
    per_day = _per_day(dosage.get("timing"), vocabulary)
    if quantities is None or per_day is None:
        return None
    low_mg, low_per_kg = _mg(quantities[0], strength)
    high_mg, high_per_kg = _mg(quantities[1], strength)
    if low_mg is None or high_mg is None or low_per_kg != high_per_kg or high_mg < low_mg:
        return None
    unit = (quantities[0].get("code") or quantities[0].get("unit") or "")
    if low_per_kg and isinstance(unit, str) and "/d" in unit.lower():
        return Dose(low_mg, high_mg, True)  # already a daily amount per kg
    return Dose(low_mg * per_day[0], high_mg * per_day[1], low_per_kg)
