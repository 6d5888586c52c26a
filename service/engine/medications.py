"""Medication history: ingredients, periods and daily doses of every medication resource."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from service.engine import units
from service.engine.dosing import PERIOD_DAYS, Dose, daily_dose
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
        days = {"day": Fraction(1), "days": Fraction(1), "week": Fraction(7),
                "weeks": Fraction(7), "month": Fraction(30), "months": Fraction(30)
                }.get(unit.lower())
    if value is None or days is None or value < 0:
        return None
    return int(Fraction(value) * days)


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
            dose = daily_dose(dosage, strength)
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
