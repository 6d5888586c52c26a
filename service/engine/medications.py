"""Medication history: ingredients, periods and daily doses of every medication resource."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from service.engine import units
from service.engine.model import Mappings, normalise_token
from service.engine.record import (
    FhirDate,
    PatientRecord,
    as_dict,
    as_list,
    codings,
    concept_text,
    parse_date,
    ref_key,
    reference_of,
    to_decimal,
)

# Statuses that say the drug was (or is being) taken; others are ignored.
TAKEN_STATUS = {
    "MedicationRequest": {"active", "completed", "stopped", "on-hold"},
    "MedicationStatement": {"active", "completed", "stopped", "on-hold"},
    "MedicationAdministration": {"completed", "in-progress", "on-hold", "stopped"},
}
ONGOING_STATUS = {"active", "in-progress", "on-hold"}
PERIOD_DAYS = {"s": Decimal(1) / 86400, "min": Decimal(1) / 1440, "h": Decimal(1) / 24,
               "d": Decimal(1), "wk": Decimal(7), "mo": Decimal(30), "a": Decimal(365)}
TABLET_UNITS = {"{tbl}", "tbl", "tab", "tablet", "tablets", "{tablet}", "{tab}", "1"}
# Consecutive courses separated by at most this many days count as one continuous course
# (refills rarely line up to the day).
COURSE_GAP_DAYS = 7


# Durations are counted as FHIR periods are read: from start to end, `(end - start).days`
# (a course from 2026-01-01 to 2026-04-01 lasted 90 days).


@dataclass(frozen=True)
class MedicationUse:
    """One medication resource reduced to ingredient concepts, period and daily dose."""

    ref: str
    concepts: tuple[str, ...]
    start: date | None
    end: date | None           # clipped to as_of; None when the end cannot be known
    daily_mg: Decimal | None   # None when the dose cannot be computed or is a range
    daily_mg_per_kg: Decimal | None = None  # when the dose itself is written per kg
    # A dose or frequency given as a range (doseRange, frequencyMax, periodMax): its bounds,
    # with daily_mg / daily_mg_per_kg None. A rule decides only when both ends agree.
    daily_mg_range: tuple[Decimal, Decimal] | None = None
    daily_mg_per_kg_range: tuple[Decimal, Decimal] | None = None

    @property
    def period_known(self) -> bool:
        return self.start is not None and self.end is not None

    @property
    def days(self) -> int | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).days


def _ingredient_concepts(
    mappings: Mappings, record: PatientRecord, resource: dict[str, Any]
) -> tuple[tuple[str, ...], Decimal | None]:
    """Ingredient concepts of a medication and, when known, the strength in mg per unit."""
    sources: list[dict[str, Any]] = []
    code = resource.get("medicationCodeableConcept")
    if isinstance(code, dict):
        sources.append(code)
    found: list[str] = []
    strength: Decimal | None = None
    medication = record.resolve(reference_of(resource.get("medicationReference")), resource)
    if medication is not None:
        if isinstance(medication.get("code"), dict):
            sources.append(medication["code"])
        found, strength = _listed_ingredients(mappings, record, medication)
    for source in sources:
        found.extend(_codes_to_concepts(mappings, source))
        for product in _products(mappings, source):
            found.append(product.ingredient)
            strength = strength or product.strength_mg
    if not found:
        found = _named_medications(mappings, " ".join(concept_text(s) for s in sources))
    return tuple(dict.fromkeys(found)), strength


def _listed_ingredients(mappings: Mappings, record: PatientRecord, medication: dict[str, Any]
                        ) -> tuple[list[str], Decimal | None]:
    """Concepts of a Medication's `ingredient` list and the first mapped one's strength."""
    found: list[str] = []
    strength: Decimal | None = None
    for ingredient in as_list(medication.get("ingredient")):
        if not isinstance(ingredient, dict):
            continue
        item = ingredient.get("itemCodeableConcept")
        if not isinstance(item, dict):
            linked = record.resolve(reference_of(ingredient.get("itemReference")), medication)
            item = linked.get("code") if linked else None
        if not isinstance(item, dict):
            continue
        names = _codes_to_concepts(mappings, item)
        if names and strength is None:
            strength = _strength_mg(ingredient.get("strength"))
        found.extend(names)
    return found, strength


def _products(mappings: Mappings, code: dict[str, Any]) -> list[Any]:
    """Product-level codes of a CodeableConcept resolved by the mapping's product table."""
    out = []
    for coding in codings(code):
        product = mappings.products.get(
            normalise_token(coding.get("system"), coding.get("code")) or "")
        if product is not None:
            out.append(product)
    return out


def _named_medications(mappings: Mappings, text: str) -> list[str]:
    """Medication concepts named in free text (only for concepts with `names`)."""
    if not text:
        return []
    return [concept.name for concept in mappings.concepts.values()
            if concept.kind == "medication" and any(n in text for n in concept.names)]


def _codes_to_concepts(mappings: Mappings, code: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for coding in codings(code):
        for name in mappings.concepts_for(coding.get("system"), coding.get("code")):
            if mappings.concepts[name].kind == "medication":
                out.append(name)
    return out


def _strength_mg(strength: Any) -> Decimal | None:
    if not isinstance(strength, dict):
        return None
    numerator = as_dict(strength.get("numerator"))
    denominator = as_dict(strength.get("denominator"))
    value = to_decimal(numerator.get("value"))
    per = to_decimal(denominator.get("value")) or Decimal(1)
    unit = numerator.get("code") or numerator.get("unit")
    if value is None or per == 0:
        return None
    try:
        return units.convert(value, unit, "mg") / per
    except units.UnitError:
        return None


# Timing.code abbreviations (FHIR R4 value set timing-abbreviation, codes of
# http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation): administrations per day. Read only
# when Timing.repeat is absent (criteria.md "Dosing frequencies come from timing.repeat or, when
# absent, from timing.code"). QnH (every n hours) is read by pattern below.
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


def _timing_code_per_day(code: Any) -> Decimal | None:
    """Administrations per day of a Timing.code (GTS abbreviation), None when not one."""
    candidates = [c.get("code") for c in codings(code)
                  if c.get("system") in GTS_SYSTEMS or c.get("system") is None]
    if isinstance(code, dict) and isinstance(code.get("text"), str):
        candidates.append(code["text"])
    for candidate in candidates:
        if not isinstance(candidate, str):
            continue
        token = candidate.strip().upper().replace(".", "")
        if token in TIMING_CODES:
            return TIMING_CODES[token]
        match = _EVERY_N_HOURS.match(token)
        if match and 0 < int(match.group(1)) <= 24:
            return Decimal(24) / int(match.group(1))
    return None


def _per_day(timing: Any) -> Range | None:
    """Administrations per day (low, high) from Timing; (1, 1) when no timing is given.

    frequency..frequencyMax per period..periodMax gives a range; repeat.when and timeOfDay
    count events a day; Timing.code is read when there is no repeat. None when the timing is
    present but cannot be read.
    """
    if not isinstance(timing, dict):
        return Decimal(1), Decimal(1)
    repeat = timing.get("repeat")
    if not isinstance(repeat, dict):
        return _code_per_day(timing)
    unit = repeat.get("periodUnit") or "d"
    if unit not in PERIOD_DAYS:
        return None
    frequency, period = to_decimal(repeat.get("frequency")), to_decimal(repeat.get("period"))
    daily_events = _daily_events(repeat)
    if daily_events is False:
        return None  # "with meals" without a count: how often is not said
    if frequency is None and period is None:
        if daily_events is not None:
            return Decimal(daily_events), Decimal(daily_events)
        return _code_per_day(timing)
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


def _code_per_day(timing: dict[str, Any]) -> Range | None:
    if timing.get("code") is None:
        return Decimal(1), Decimal(1)
    per_day = _timing_code_per_day(timing.get("code"))
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
                     unit_days: Decimal) -> tuple[Decimal | None, Decimal | None]:
    """(low, high) administrations per day from frequency(Max) per period(Max)."""
    low_f = frequency if frequency is not None else Decimal(1)
    frequency_max = to_decimal(repeat.get("frequencyMax"))
    high_f = frequency_max if frequency_max is not None and frequency_max >= low_f else low_f
    low_p = period if period is not None else Decimal(1)
    period_max = to_decimal(repeat.get("periodMax"))
    high_p = period_max if period_max is not None and period_max >= low_p else low_p
    if low_f <= 0 or low_p <= 0:
        return None, None
    return low_f / (high_p * unit_days), high_f / (low_p * unit_days)


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


def _mg(quantity: dict[str, Any], strength: Decimal | None) -> tuple[Decimal | None, bool]:
    """(amount in mg, written per kg) of one dose quantity; None when it cannot be read."""
    value = to_decimal(quantity.get("value"))
    unit = quantity.get("code") or quantity.get("unit")
    if value is None or value < 0:
        return None, False
    unit_text = unit.strip() if isinstance(unit, str) else ""
    if unit_text.lower() in ("mg/kg", "mg/kg/d", "mg/kg/day"):
        return value, True
    if unit_text.lower() in TABLET_UNITS:
        return (value * strength if strength is not None else None), False
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


def _dose(dosage: dict[str, Any], strength: Decimal | None) -> Dose | None:
    """The daily dose range of one Dosage (dose range x frequency range); None if unreadable."""
    quantities = _dose_quantities(dosage)
    per_day = _per_day(dosage.get("timing"))
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


Period = tuple[date | None, date | None, bool]


def _period(resource: dict[str, Any], rtype: str) -> Period:
    """(start, end, ongoing) as written; ongoing means no end because still being taken."""
    ongoing = resource.get("status") in ONGOING_STATUS
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        start = parse_date(period.get("start"))
        end = parse_date(period.get("end"))
        return (start.day if start else None, end.latest if end else None,
                ongoing and end is None)
    when = parse_date(resource.get("effectiveDateTime"))
    if when:
        # A single date says when, not for how long: the duration is unknown, never 0 days
        # (criteria.md "Records as hospitals send them").
        return when.day, None, False
    if rtype == "MedicationRequest":
        return _request_period(resource, ongoing)
    return None, None, ongoing


def _open_or_closed(start: date, end: FhirDate | None, ongoing: bool) -> Period:
    return start, end.latest if end else None, ongoing and end is None


def _request_period(resource: dict[str, Any], ongoing: bool) -> Period:
    """A MedicationRequest's period: validity, timing bounds, or supply x fills from authoredOn."""
    dispense = as_dict(resource.get("dispenseRequest"))
    validity = dispense.get("validityPeriod")
    if isinstance(validity, dict):
        start = parse_date(validity.get("start"))
        if start:
            return _open_or_closed(start.day, parse_date(validity.get("end")), ongoing)
    authored = parse_date(resource.get("authoredOn"))
    for dosage in as_list(resource.get("dosageInstruction")):
        repeat = as_dict(as_dict(as_dict(dosage).get("timing")).get("repeat"))
        bounds = repeat.get("boundsPeriod")
        if isinstance(bounds, dict):
            start = parse_date(bounds.get("start")) or authored
            if start:
                return _open_or_closed(start.day, parse_date(bounds.get("end")), ongoing)
        days = _duration_days(repeat.get("boundsDuration"))
        if authored and days is not None:
            return authored.day, authored.day + timedelta(days=days), False
    supply = _duration_days(dispense.get("expectedSupplyDuration"))
    if authored and supply is not None:
        repeats = dispense.get("numberOfRepeatsAllowed")
        count = 1 + (repeats if isinstance(repeats, int) and repeats > 0 else 0)
        return authored.day, authored.day + timedelta(days=supply * count), False
    if authored:
        return authored.day, None, ongoing
    return None, None, ongoing


def _duration_days(duration: Any) -> int | None:
    if not isinstance(duration, dict):
        return None
    value = to_decimal(duration.get("value"))
    unit = duration.get("code") or duration.get("unit")
    days = PERIOD_DAYS.get(unit) if isinstance(unit, str) else None
    if days is None and isinstance(unit, str):
        days = {"day": Decimal(1), "days": Decimal(1), "week": Decimal(7), "weeks": Decimal(7),
                "month": Decimal(30), "months": Decimal(30)}.get(unit.lower())
    if value is None or days is None or value < 0:
        return None
    return int(value * days)


def medication_uses(record: PatientRecord, mappings: Mappings, as_of: date
                    ) -> list[MedicationUse]:
    """Every usable medication entry on or before as_of with its ingredients, period and dose."""
    uses = []
    for rtype, dose_key in (("MedicationRequest", "dosageInstruction"),
                            ("MedicationStatement", "dosage"),
                            ("MedicationAdministration", "dosage")):
        for resource in record.by_type.get(rtype, []):
            if resource.get("status") not in TAKEN_STATUS[rtype]:
                continue
            if rtype == "MedicationRequest" and resource.get("intent") in ("proposal", "plan"):
                continue
            concepts, strength = _ingredient_concepts(mappings, record, resource)
            if not concepts:
                continue
            start, end, ongoing = _period(resource, rtype)
            if start is not None and start > as_of:
                continue  # started after the as-of date: not yet part of the history
            start, end = _clipped(start, end, ongoing, as_of)
            dose = _first_dose(resource.get(dose_key), strength)
            uses.append(_use(ref_key(resource), concepts, start, end, dose))
    return uses


def _clipped(start: date | None, end: date | None, ongoing: bool, as_of: date
             ) -> tuple[date | None, date | None]:
    """The period as of a date: an ongoing use runs to it, a later end is cut at it."""
    if end is None and ongoing and start is not None:
        end = as_of
    if end is not None:
        end = min(end, as_of)
        if start is not None and end < start:
            return None, None
    return start, end


def _first_dose(dosages: Any, strength: Decimal | None) -> Dose | None:
    """The daily dose of the first readable Dosage (MedicationAdministration has one object)."""
    if isinstance(dosages, dict):
        dosages = [dosages]
    for dosage in as_list(dosages):
        if isinstance(dosage, dict):
            dose = _dose(dosage, strength)
            if dose is not None:
                return dose
    return None


def _use(ref: str, concepts: tuple[str, ...], start: date | None, end: date | None,
         dose: Dose | None) -> MedicationUse:
    if dose is None:
        return MedicationUse(ref, concepts, start, end, None)
    exact = dose.low if dose.low == dose.high else None
    bounds = (dose.low, dose.high)
    if dose.per_kg:
        return MedicationUse(ref, concepts, start, end, None, exact,
                             daily_mg_per_kg_range=bounds)
    return MedicationUse(ref, concepts, start, end, exact, None, daily_mg_range=bounds)


def longest_course(uses: Iterable[MedicationUse]) -> tuple[int, tuple[str, ...]]:
    """Longest continuous course (days) over the uses' known periods, and the refs in it."""
    spans = sorted((u.start, u.end, u.ref) for u in uses if u.start and u.end)
    best, best_refs = 0, tuple[str, ...]()
    current_start = current_end = date.min
    refs: list[str] = []
    for start, end, ref in spans:
        if refs and start <= current_end + timedelta(days=COURSE_GAP_DAYS):
            current_end = max(current_end, end)
            refs.append(ref)
        else:
            current_start, current_end, refs = start, end, [ref]
        length = (current_end - current_start).days
        if length > best:
            best, best_refs = length, tuple(refs)
    return best, best_refs


def has_medication_history(record: PatientRecord) -> bool:
    """Whether the record holds any medication resource that was not voided or only planned."""
    void = {"entered-in-error", "cancelled", "draft", "not-taken", "not-done"}
    return any(
        r.get("status") not in void for t in TAKEN_STATUS for r in record.by_type.get(t, [])
    )
