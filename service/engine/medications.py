"""Medication history: ingredients, periods and daily doses of every medication resource."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from service.engine import units
from service.engine.record import (
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
from service.mappings import Mappings, normalise_token

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
    daily_mg: Decimal | None   # None when the dose cannot be computed
    daily_mg_per_kg: Decimal | None = None  # when the dose itself is written per kg

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
    found: list[str] = []
    strength: Decimal | None = None
    sources: list[dict[str, Any]] = []
    code = resource.get("medicationCodeableConcept")
    if isinstance(code, dict):
        sources.append(code)
    medication = record.resolve(reference_of(resource.get("medicationReference")), resource)
    if medication is not None:
        if isinstance(medication.get("code"), dict):
            sources.append(medication["code"])
        for ingredient in as_list(medication.get("ingredient")):
            if not isinstance(ingredient, dict):
                continue
            item = ingredient.get("itemCodeableConcept")
            if not isinstance(item, dict):
                linked = record.resolve(reference_of(ingredient.get("itemReference")), medication)
                item = linked.get("code") if linked else None
            if isinstance(item, dict):
                before = len(found)
                found.extend(_codes_to_concepts(mappings, item))
                if len(found) > before and strength is None:
                    strength = _strength_mg(ingredient.get("strength"))
    for source in sources:
        found.extend(_codes_to_concepts(mappings, source))
        for coding in codings(source):
            product = mappings.products.get(
                normalise_token(coding.get("system"), coding.get("code")) or ""
            )
            if product is not None:
                found.append(product.ingredient)
                strength = strength or product.strength_mg
    if not found:
        text = " ".join(concept_text(s) for s in sources)
        if text:
            for concept in mappings.concepts.values():
                if concept.kind == "medication" and any(n in text for n in concept.names):
                    found.append(concept.name)
    return tuple(dict.fromkeys(found)), strength


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


def _per_day(timing: Any) -> Decimal | None:
    """Administrations per day from Timing.repeat; 1 when no timing is given."""
    if not isinstance(timing, dict):
        return Decimal(1)
    repeat = timing.get("repeat")
    if not isinstance(repeat, dict):
        return Decimal(1)
    frequency = to_decimal(repeat.get("frequency")) or Decimal(1)
    period = to_decimal(repeat.get("period")) or Decimal(1)
    unit = repeat.get("periodUnit") or "d"
    if unit not in PERIOD_DAYS or period <= 0:
        return None
    return frequency / (period * PERIOD_DAYS[unit])


def _dose(dosage: dict[str, Any], strength: Decimal | None
          ) -> tuple[Decimal | None, Decimal | None]:
    """(daily mg, daily mg/kg) from one Dosage; either may be None."""
    quantity = None
    for item in as_list(dosage.get("doseAndRate")):
        if isinstance(item, dict) and isinstance(item.get("doseQuantity"), dict):
            quantity = item["doseQuantity"]
            break
    if quantity is None and isinstance(dosage.get("dose"), dict):  # MedicationAdministration
        quantity = dosage["dose"]
    if quantity is None:
        return None, None
    value = to_decimal(quantity.get("value"))
    unit = quantity.get("code") or quantity.get("unit")
    per_day = _per_day(dosage.get("timing"))
    if value is None or per_day is None or value < 0:
        return None, None
    unit_text = unit.strip() if isinstance(unit, str) else ""
    if unit_text.lower() in ("mg/kg", "mg/kg/d", "mg/kg/day"):
        factor = Decimal(1) if "/d" in unit_text.lower() else per_day
        return None, value * factor
    if unit_text.lower() in TABLET_UNITS:
        return (value * strength * per_day, None) if strength is not None else (None, None)
    try:
        return units.convert(value, unit_text, "mg") * per_day, None
    except units.UnitError:
        return None, None


def _period(resource: dict[str, Any], rtype: str) -> tuple[date | None, date | None, bool]:
    """(start, end, ongoing) as written; ongoing means no end because still being taken."""
    status = resource.get("status")
    ongoing = status in ONGOING_STATUS
    for key in ("effectivePeriod",):
        period = resource.get(key)
        if isinstance(period, dict):
            start = parse_date(period.get("start"))
            end = parse_date(period.get("end"))
            return (start.day if start else None, end.latest if end else None,
                    ongoing and end is None)
    for key in ("effectiveDateTime",):
        when = parse_date(resource.get(key))
        if when:
            return when.day, when.day, False
    if rtype == "MedicationRequest":
        dispense = as_dict(resource.get("dispenseRequest"))
        validity = dispense.get("validityPeriod") if isinstance(dispense, dict) else None
        if isinstance(validity, dict):
            start = parse_date(validity.get("start"))
            end = parse_date(validity.get("end"))
            if start:
                return start.day, end.latest if end else None, ongoing and end is None
        authored = parse_date(resource.get("authoredOn"))
        for dosage in as_list(resource.get("dosageInstruction")):
            repeat = as_dict(as_dict(as_dict(dosage).get("timing")).get("repeat"))
            bounds = repeat.get("boundsPeriod") if isinstance(repeat, dict) else None
            if isinstance(bounds, dict):
                start = parse_date(bounds.get("start")) or authored
                end = parse_date(bounds.get("end"))
                if start:
                    return start.day, end.latest if end else None, ongoing and end is None
            duration = repeat.get("boundsDuration") if isinstance(repeat, dict) else None
            days = _duration_days(duration)
            if authored and days is not None:
                return authored.day, authored.day + timedelta(days=days), False
        supply = _duration_days(dispense.get("expectedSupplyDuration")) if isinstance(
            dispense, dict) else None
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
            if end is None and ongoing and start is not None:
                end = as_of
            if end is not None:
                end = min(end, as_of)
                if start is not None and end < start:
                    start, end = None, None
            daily_mg = per_kg = None
            dosages = resource.get(dose_key)
            if isinstance(dosages, dict):
                dosages = [dosages]
            for dosage in as_list(dosages):
                if isinstance(dosage, dict):
                    daily_mg, per_kg = _dose(dosage, strength)
                    if daily_mg is not None or per_kg is not None:
                        break
            uses.append(MedicationUse(ref_key(resource), concepts, start, end, daily_mg, per_kg))
    return uses


def longest_course(uses: Iterable[MedicationUse]) -> tuple[int, tuple[str, ...]]:
    """Longest continuous course (days) over the uses' known periods, and the refs in it."""
    spans = sorted((u.start, u.end, u.ref) for u in uses if u.start and u.end)
    best, best_refs = 0, ()
    current_start = current_end = None
    refs: list[str] = []
    for start, end, ref in spans:
        if current_end is not None and start <= current_end + timedelta(days=COURSE_GAP_DAYS):
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
