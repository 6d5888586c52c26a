"""Pick the latest usable measurement of a concept and convert it to the canonical unit."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Context, Decimal
from typing import Any

from service.engine import units
from service.engine.model import Concept, normalise_token
from service.engine.numbers import to_decimal
from service.engine.record import (
    USABLE_OBSERVATION,
    Entry,
    PatientRecord,
    as_dict,
    as_list,
    codings,
)

_RATIO_TEXT = re.compile(
    r"^\s*(<=|>=|<|>)?\s*(\d+(?:\.\d+)?)\s*[:/]\s*(\d+(?:\.\d+)?)\s*$")
# A titer written with a pattern or qualifier after it: "1:160 speckled", "1:80 (homogeneous)".
_RATIO_PREFIX = re.compile(
    r"^\s*(<=|>=|<|>)?\s*(\d+(?:\.\d+)?)\s*[:/]\s*(\d+(?:\.\d+)?)(?:\s+|\s*[,;(]|$)")
_NEGATIVE_TEXT = re.compile(r"^\s*(negative|neg|not detected|nonreactive|non-reactive)\b", re.I)
# A number written as text, with an optional comparator and unit: ">60", "<0.2 mg/dL",
# "≥ 90 mL/min/1.73m2". A range "60-65" is read as both ends.
_COMPARATORS = {"<": "<", ">": ">", "<=": "<=", ">=": ">=", "\u2264": "<=", "\u2265": ">=",
                "=<": "<=", "=>": ">="}
_NUMBER_TEXT = re.compile(
    r"^\s*(<=|>=|=<|=>|<|>|\u2264|\u2265)?\s*(-?\d+(?:\.\d+)?)"
    r"(?:\s*(?:-|\u2013|to)\s*(\d+(?:\.\d+)?))?\s*([^\d\s<>=].*)?$")


@dataclass(frozen=True)
class Measurement:
    """A value in the concept's canonical unit, with what it came from.

    A range (valueRange, "60-65") has `value` = its low end, `high` its high end and
    comparator "range": compare() decides it only when both ends agree.
    """

    value: Decimal
    unit: str
    comparator: str | None
    entry: Entry
    when: date
    original: str  # as written in the record, e.g. "5.9 g/dL"
    high: Decimal | None = None

    @property
    def ref(self) -> str:
        return self.entry.ref

    @property
    def shown(self) -> str:
        """The value for reasons: "60-65", ">60" or "5.9" (canonical unit, no unit)."""
        if self.high is not None:
            return f"{fmt(self.value)}-{fmt(self.high)}"
        return f"{self.comparator or ''}{fmt(self.value)}"


@dataclass(frozen=True)
class Reading:
    """A numeric value as the Observation states it, before unit conversion."""

    low: Decimal
    high: Decimal | None   # a range's high end (valueRange, "60-65")
    unit: str | None
    comparator: str | None
    from_text: bool        # read from valueString: the unit may have to be inferred


@dataclass(frozen=True)
class Lookup:
    """The outcome of looking for a value: a measurement, or why there is none usable."""

    measurement: Measurement | None
    problem: str | None  # a sentence fragment saying what is missing, when measurement is None
    evidence: tuple[str, ...] = ()


_THREE_DIGITS = Context(prec=3)


def fmt(value: Decimal) -> str:
    """A Decimal written for people: no exponent, no trailing zeros beyond what was given, three
    decimals at most; a value that would round to 0 keeps three significant digits instead."""
    if value == value.to_integral_value():
        return format(value.normalize(), "f")
    rounded = value.quantize(Decimal("0.001"))
    if not rounded:  # 0.0004 mg is not "0 mg": a reason must not say a value is nothing
        rounded = _THREE_DIGITS.plus(value)
    return format(rounded.normalize(), "f")


def label(concept: Concept) -> str:
    """How a concept is named in reasons: its mapping's `display`, else its name."""
    return concept.display or concept.name.replace("-", " ")


def _quantity_unit(quantity: dict[str, Any]) -> str | None:
    unit = quantity.get("code") if isinstance(quantity.get("code"), str) else None
    if unit is None and isinstance(quantity.get("unit"), str):
        unit = quantity["unit"]
    return unit


def _text_reading(text: str) -> Reading | None:
    match = _NUMBER_TEXT.match(text.replace("\u200b", ""))
    if not match:
        return None
    comparator = _COMPARATORS.get(match.group(1) or "")
    low = Decimal(match.group(2))
    high = Decimal(match.group(3)) if match.group(3) else None
    if high is not None and (comparator is not None or high < low):
        return None  # ">60-65" or "65-60" says nothing exact
    unit = match.group(4).strip() if match.group(4) else None
    return Reading(low, high, unit or None, "range" if high is not None else comparator, True)


def _coded_number(value: Any, answers: Mapping[str, Decimal]) -> Reading | None:
    """A coded answer that stands for a number (ECOG LA9624-3 = 2), from the mapping."""
    for coding in codings(value):
        number = answers.get(normalise_token(coding.get("system"), coding.get("code")) or "")
        if number is not None:
            return Reading(number, None, None, None, False)
    return None


def reading(resource: dict[str, Any], answers: Mapping[str, Decimal] | None = None
            ) -> Reading | None:
    """The numeric value of an Observation: valueQuantity, valueInteger, valueRange, text,
    or a coded answer the concept's `answers` give a number."""
    if answers and isinstance(resource.get("valueCodeableConcept"), dict):
        return _coded_number(resource["valueCodeableConcept"], answers)
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict):
        number = to_decimal(quantity.get("value"))
        if number is None:
            return None
        comparator = quantity.get("comparator")
        return Reading(number, None, _quantity_unit(quantity),
                       comparator if isinstance(comparator, str) else None, False)
    if "valueInteger" in resource:
        number = to_decimal(resource.get("valueInteger"))
        return None if number is None else Reading(number, None, None, None, False)
    value_range = resource.get("valueRange")
    if isinstance(value_range, dict):
        low_q, high_q = as_dict(value_range.get("low")), as_dict(value_range.get("high"))
        low, high = to_decimal(low_q.get("value")), to_decimal(high_q.get("value"))
        low_unit, high_unit = _quantity_unit(low_q), _quantity_unit(high_q)
        if low is not None and high is not None:
            if low_unit != high_unit and low_unit and high_unit or high < low:
                return None  # ends in different units: not one range
            return Reading(low, high, low_unit or high_unit, "range", False)
        # An open range is a one-sided bound.
        if low is not None:
            return Reading(low, None, low_unit, ">=", False)
        if high is not None:
            return Reading(high, None, high_unit, "<=", False)
        return None
    if isinstance(resource.get("valueString"), str):
        return _text_reading(resource["valueString"])
    return None


def observation_value(resource: dict[str, Any]) -> tuple[Decimal | None, str | None, str | None]:
    """(number, unit, comparator) of an Observation's numeric value, if it has one."""
    found = reading(resource)
    if found is None:
        return None, None, None
    return found.low, found.unit, found.comparator


def _reference_unit(resource: dict[str, Any]) -> str | None:
    for item in as_list(resource.get("referenceRange")):
        for key in ("high", "low"):
            unit = _quantity_unit(as_dict(as_dict(item).get(key)))
            if unit:
                return unit
    return None


def in_window(when: date, as_of: date, lookback_days: int) -> bool:
    """Within the look-back window ending at the as-of date (0 days = no limit)."""
    if when > as_of:
        return False
    return lookback_days == 0 or when >= as_of - timedelta(days=lookback_days)


def latest_entries(
    record: PatientRecord, concept: Concept, as_of: date
) -> tuple[list[Entry], int]:
    """Usable entries of a concept dated on or before as_of, newest first; and the count after."""
    usable = []
    after = 0
    for entry in record.entries(concept.name):
        resource = entry.resource
        if resource.get("resourceType") == "Observation" and (
            resource.get("status") not in USABLE_OBSERVATION
        ):
            continue
        if entry.when is None:
            continue
        if entry.when.day > as_of:
            after += 1
            continue
        usable.append(entry)
    return usable, after


SYSTEM_NAMES = {
    "http://loinc.org": "LOINC", "http://snomed.info/sct": "SNOMED CT",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM", "urn:trial-eligibility:score": "local",
}


def searched_codes(concept: Concept) -> str:
    """The codes a concept is looked for under, for reasons ("LOINC 718-7, 20509-6")."""
    by_system: dict[str, list[str]] = {}
    for token in sorted(concept.codes):
        system, _, code = token.partition("|")
        by_system.setdefault(SYSTEM_NAMES.get(system, system), []).append(code)
    return "; ".join(f"{system} {', '.join(codes)}" for system, codes in by_system.items())


def _nothing_usable(concept: Concept, name: str, entries: list[Entry], after: int,
                    undated: int, as_of: date) -> Lookup:
    """Why no value of a concept can be used: none readable, all later, undated, or none."""
    if entries:
        return Lookup(None, f"no usable {name} value (result without a number)",
                      tuple(e.ref for e in entries[:1]))
    if after:
        return Lookup(None, f"no {name} on or before {as_of.isoformat()} "
                            f"({after} result(s) after that date ignored)")
    if undated:
        return Lookup(None, f"no dated {name} result ({undated} without a date)")
    # Not finding a code is not evidence of absence: say what was looked for.
    return Lookup(None, f"no {name} on record under the codes searched "
                        f"({searched_codes(concept)})")


def unit_of(value: Reading, resource: dict[str, Any], concept: Concept) -> tuple[str | None, str]:
    """The unit a reading is in, and a note when it had to be assumed."""
    if value.unit is not None or not value.from_text:
        return value.unit, ""
    # A number written as text often leaves the unit to the reference range, or to the one
    # unit every lab uses for the analyte; with a molar mass (mass or moles) the unit is
    # ambiguous and stays missing.
    unit = _reference_unit(resource)
    if unit is None and concept.molar_mass is None:
        return concept.unit, " (no unit given, read as the usual unit)"
    return unit, ""


def latest_quantity(
    record: PatientRecord,
    concept: Concept,
    as_of: date,
    lookback_days: int | None = None,
) -> Lookup:
    """The newest valid numeric value of a concept within the look-back, in canonical unit."""
    lookback = concept.lookback_days if lookback_days is None else lookback_days
    name = label(concept)
    entries, after = latest_entries(record, concept, as_of)
    undated = sum(1 for e in record.entries(concept.name) if e.when is None)
    found: tuple[Entry, Reading] | None = None
    for entry in entries:
        value = reading(entry.resource, concept.answers)
        if value is not None:
            # Entries are newest first: the first with a number is the one used.
            found = (entry, value)
            break
    if found is None:
        return _nothing_usable(concept, name, entries, after, undated, as_of)
    entry, value = found
    when = entry.when.day  # type: ignore[union-attr]
    number_text = (f"{fmt(value.low)}-{fmt(value.high)}" if value.high is not None
                   else f"{value.comparator or ''}{fmt(value.low)}")
    unit, assumed = unit_of(value, entry.resource, concept)
    original = f"{number_text} {unit}".strip() if unit else number_text
    if not in_window(when, as_of, lookback):
        return Lookup(None, f"no {name} within {lookback} days (latest {original} on "
                            f"{when.isoformat()} is stale)", (entry.ref,))
    assert concept.unit is not None
    try:
        low = units.convert(value.low, unit, concept.unit, aliases=concept.unit_aliases,
                            molar_mass=concept.molar_mass)
        high = None if value.high is None else units.convert(
            value.high, unit, concept.unit, aliases=concept.unit_aliases,
            molar_mass=concept.molar_mass)
    except units.UnitError:
        return Lookup(None, f"the unit of {name} {original} on {when.isoformat()} cannot be "
                            f"converted to {concept.unit}", (entry.ref,))
    if concept.plausible_range and value.comparator in (None, "range"):
        bottom, top = concept.plausible_range
        if not all(bottom <= v <= top for v in (low, high) if v is not None):
            return Lookup(None, f"{name} {original} on {when.isoformat()} is implausible "
                                f"(outside {fmt(bottom)}-{fmt(top)} {concept.unit})",
                          (entry.ref,))
    return Lookup(Measurement(low, concept.unit, value.comparator, entry, when,
                              original + assumed, high), None, (entry.ref,))


def compare(value: Decimal, comparator: str | None, operator: str, threshold: Decimal,
            high: Decimal | None = None) -> bool | None:
    """Whether value (possibly '<'/'>' qualified) satisfies `operator threshold`; None = unsure.

    A range (comparator "range", `high` its upper end) decides only when both ends agree.
    """
    def holds(v: Decimal) -> bool:
        return {
            ">=": v >= threshold, "<=": v <= threshold, ">": v > threshold, "<": v < threshold,
        }[operator]

    if comparator in (None, ""):
        return holds(value)
    if comparator == "range":
        if high is None:
            return None
        ends = {holds(value), holds(high)}
        return ends.pop() if len(ends) == 1 else None
    if comparator not in (">", ">=", "<", "<="):
        return None
    # A qualified value stands for an interval: "> 5" is (5, inf), "<= 5" is (-inf, 5]. Decide
    # only when the whole interval agrees, minding its open or closed end at the threshold
    # ("< 0.5" is never ">= 0.5"; "> 0.5" is always "> 0.5").
    upward = comparator in (">", ">=")
    open_end = comparator in (">", "<")
    strict = operator in (">", "<")
    past = value > threshold if upward else value < threshold
    if upward == (operator in (">", ">=")):  # the interval runs the way the operator looks
        return True if past or (value == threshold and (open_end or not strict)) else None
    return False if past or (value == threshold and (open_end or strict)) else None


def ratio_denominator(resource: dict[str, Any]) -> tuple[Decimal | None, str]:
    """Titer denominator from valueRatio, valueQuantity or a string like '1:160'."""
    ratio = resource.get("valueRatio")
    if isinstance(ratio, dict):
        num = to_decimal(as_dict(ratio.get("numerator")).get("value"))
        den = to_decimal(as_dict(ratio.get("denominator")).get("value"))
        if num and den and num > 0:
            return den / num, f"{fmt(num)}:{fmt(den)}"
        return None, "an unreadable ratio"
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict):
        value = to_decimal(quantity.get("value"))
        if value is not None and value > 0:
            # A titer as a quantity is the dilution denominator (1:160 written as 160).
            return value, f"1:{fmt(value)}"
        return None, "an unreadable quantity"
    text = resource.get("valueString")
    if isinstance(text, str):
        clean = text.replace("\u200b", "")
        match = _RATIO_TEXT.match(clean) or _RATIO_PREFIX.match(clean)
        if match and match.group(1) in (None, ">", ">="):
            # "1:160", "1/160", ">1:640" (at least that titer) and "1:160 speckled" (a pattern
            # after the titer) are read. "<1:40" is below a titer: see titer_below().
            num, den = Decimal(match.group(2)), Decimal(match.group(3))
            if num > 0:
                return den / num, f"{match.group(1) or ''}{match.group(2)}:{match.group(3)}"
        return None, f"the text {text.strip()[:20]!r}"
    return None, "no titer value"


def titer_below(resource: dict[str, Any]) -> tuple[Decimal, str] | None:
    """(denominator, shown) when a titer result says it is below a dilution or negative.

    "<1:40" is below 1:40; "negative" is below the screening dilution, which the text does
    not give, so it is below any titer a criterion asks for only if the lab screens at or
    above it: the caller decides with the denominator (None = not stated, use 0).
    """
    text = resource.get("valueString")
    if isinstance(text, str):
        clean = text.replace("\u200b", "")
        match = _RATIO_TEXT.match(clean) or _RATIO_PREFIX.match(clean)
        if match and match.group(1) in ("<", "<="):
            num, den = Decimal(match.group(2)), Decimal(match.group(3))
            if num > 0:
                return den / num, f"{match.group(1)}{match.group(2)}:{match.group(3)}"
        if _NEGATIVE_TEXT.match(clean):
            return Decimal(0), "negative"
    return None
