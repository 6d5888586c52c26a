"""Medication history: ingredients, periods and daily doses of every medication resource."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from service.engine.dosing import PERIOD_DAYS, Dose, Strength, daily_dose
from service.engine.ingredients import ingredient_concepts
from service.engine.model import FrequencyVocabulary, Mappings, normalise_token
from service.engine.numbers import to_decimal
from service.engine.record import (
    FhirDate,
    PatientRecord,
    as_dict,
    as_list,
    codings,
    parse_date,
    ref_key,
    reference_of,
)

# Statuses that say the drug was (or is being) taken; others are ignored.
TAKEN_STATUS = {
    "MedicationRequest": {"active", "completed", "stopped", "on-hold"},
    "MedicationStatement": {"active", "completed", "stopped", "on-hold"},
    "MedicationAdministration": {"completed", "in-progress", "on-hold", "stopped"},
}
ONGOING_STATUS = {"active", "in-progress", "on-hold"}
# Consecutive courses separated by at most this many days count as one continuous course
# (refills rarely line up to the day); the mappings' [courses] table sets it, per agent or
# route too (a monthly infusion is one course).
COURSE_GAP_DAYS = 7
ADMINISTRATION = "MedicationAdministration"


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
    # The largest gap (days) after which a later use of the same agent starts a new course.
    gap_days: int = COURSE_GAP_DAYS
    # An administration's amount given (mg, or mg/kg when written per kg), before it is spread
    # over the interval to the next one of its series; None for orders and statements.
    given_mg: Decimal | None = None
    given_mg_per_kg: Decimal | None = None
    # Condition concepts the use was given for (reasonCode, reasonReference), when recorded.
    reasons: tuple[str, ...] = ()

    @property
    def period_known(self) -> bool:
        return self.start is not None and self.end is not None

    @property
    def days(self) -> int | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).days


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
        # (docs/decisions.md "Records as hospitals send them").
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
    """Every usable medication entry on or before as_of with its ingredients, period and dose;
    administrations of one agent close enough together form a course (see _series)."""
    uses = []
    points: list[tuple[MedicationUse, int]] = []
    for rtype, dose_key in (("MedicationRequest", "dosageInstruction"),
                            ("MedicationStatement", "dosage"),
                            (ADMINISTRATION, "dosage")):
        for resource in record.by_type.get(rtype, []):
            if resource.get("status") not in TAKEN_STATUS[rtype]:
                continue
            if rtype == "MedicationRequest" and resource.get("intent") in ("proposal", "plan"):
                continue
            concepts, strength = ingredient_concepts(mappings, record, resource)
            reasons = indications(record, mappings, resource)
            if not concepts and not reasons:
                continue  # neither what nor what for is known: nothing a rule can read
            start, end, ongoing = _period(resource, rtype)
            if start is not None and start > as_of:
                continue  # started after the as-of date: not yet part of the history
            start, end = _clipped(start, end, ongoing, as_of)
            dose = _first_dose(resource.get(dose_key), strength, mappings.frequencies)
            use = replace(_use(ref_key(resource), concepts, start, end, dose), reasons=reasons)
            if rtype == ADMINISTRATION:
                use = replace(use, given_mg=use.daily_mg, given_mg_per_kg=use.daily_mg_per_kg)
                if start is not None and (end is None or end == start):
                    # One administration (a date, or an infusion within a day): joined into
                    # a series below.
                    points.append((replace(use, end=None),
                                   _gap(mappings, concepts, resource, True)))
                    continue
            uses.append(replace(use, gap_days=_gap(mappings, concepts, resource,
                                                   rtype == ADMINISTRATION)))
    return uses + _series(points)


def indications(record: PatientRecord, mappings: Mappings, resource: dict[str, Any]
                ) -> tuple[str, ...]:
    """Concepts of what a medication was given for: its reasonCode codings and the codes of
    the Conditions (or Observations) its reasonReference points to."""
    found: list[str] = []
    targets = list(as_list(resource.get("reasonCode")))
    for reference in as_list(resource.get("reasonReference")):
        target = record.resolve(reference_of(reference), resource)
        if target is not None:
            targets.append(target.get("code"))
    for concept in targets:
        for coding in codings(concept):
            found += mappings.concepts_for(coding.get("system"), coding.get("code"))
    return tuple(dict.fromkeys(found))


def _gap(mappings: Mappings, concepts: tuple[str, ...], resource: dict[str, Any],
         administration: bool) -> int:
    """The gap that still joins two uses of the agent: the agent's own, else its route's,
    else the default (for a series of administrations or for other uses)."""
    own = [g for n in concepts if (g := mappings.concepts[n].course_gap_days) is not None]
    if own:
        return max(own)
    courses = mappings.courses
    dosages = resource.get("dosage", resource.get("dosageInstruction"))
    for dosage in [dosages] if isinstance(dosages, dict) else as_list(dosages):
        for coding in codings(as_dict(dosage).get("route")):
            token = normalise_token(coding.get("system"), coding.get("code"))
            if token is not None and token in courses.routes:
                return courses.routes[token]
    return courses.administration_gap_days if administration else courses.gap_days


def _series(points: list[tuple[MedicationUse, int]]) -> list[MedicationUse]:
    """Single-date administrations of one agent no more than its gap apart form one course
    from the first to the last (docs/decisions.md: monthly pulses included). Each member covers the
    days to the next one, and its dose is spread over them (a 500 mg pulse a month is about
    17 mg a day), as an order for the same doses would be read. A lone administration keeps an
    unknown duration (never zero days)."""
    out: list[MedicationUse] = []
    by_agent: dict[tuple[str, ...], list[tuple[MedicationUse, int]]] = {}
    for use, gap in points:
        by_agent.setdefault(use.concepts, []).append((use, gap))
    for items in by_agent.values():
        items.sort(key=lambda item: (item[0].start or date.min, item[0].ref))
        runs: list[list[tuple[MedicationUse, int]]] = []
        for use, gap in items:
            previous = runs[-1][-1][0] if runs else None
            if (previous is not None and previous.start is not None and use.start is not None
                    and (use.start - previous.start).days <= gap):
                runs[-1].append((use, gap))
            else:
                runs.append([(use, gap)])
        for run in runs:
            if len(run) == 1:
                out.append(run[0][0])
                continue
            for i, (use, gap) in enumerate(run):
                assert use.start is not None
                nxt = run[i + 1][0].start if i + 1 < len(run) else None
                prev = run[i - 1][0].start if i > 0 else None
                interval = ((nxt - use.start).days if nxt is not None
                            else (use.start - prev).days if prev is not None else 1)
                out.append(_spread(use, nxt or use.start, max(interval, 1), gap))
    return out


def _spread(use: MedicationUse, end: date, interval: int, gap: int) -> MedicationUse:
    """A series member from its date to the next one's, its dose per day of that interval."""
    def per_day(value: Decimal | None) -> Decimal | None:
        return None if value is None else value / interval

    def range_per_day(bounds: tuple[Decimal, Decimal] | None
                      ) -> tuple[Decimal, Decimal] | None:
        return None if bounds is None else (bounds[0] / interval, bounds[1] / interval)

    return replace(use, end=end, gap_days=gap, daily_mg=per_day(use.daily_mg),
                   daily_mg_per_kg=per_day(use.daily_mg_per_kg),
                   daily_mg_range=range_per_day(use.daily_mg_range),
                   daily_mg_per_kg_range=range_per_day(use.daily_mg_per_kg_range))


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


def _first_dose(dosages: Any, strength: Strength | None, vocabulary: FrequencyVocabulary
                ) -> Dose | None:
    """The daily dose of the first readable Dosage (MedicationAdministration has one object)."""
    if isinstance(dosages, dict):
        dosages = [dosages]
    for dosage in as_list(dosages):
        if isinstance(dosage, dict):
            dose = daily_dose(dosage, strength, vocabulary)
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
    uses = list(uses)
    spans = sorted((u.start, u.end, u.ref) for u in uses if u.start and u.end)
    best, best_refs = 0, tuple[str, ...]()
    current_start = current_end = date.min
    refs: list[str] = []
    gaps = {u.ref: u.gap_days for u in uses}
    for start, end, ref in spans:
        if refs and start <= current_end + timedelta(days=gaps.get(ref, COURSE_GAP_DAYS)):
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
