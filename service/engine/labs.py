"""Pick the latest usable measurement of a concept and convert it to the canonical unit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from service.engine import units
from service.engine.record import (
    USABLE_OBSERVATION,
    Entry,
    PatientRecord,
    as_dict,
    to_decimal,
)
from service.mappings import Concept

_RATIO_TEXT = re.compile(
    r"^\s*(<=|>=|<|>)?\s*(\d+(?:\.\d+)?)\s*[:/]\s*(\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Measurement:
    """A value in the concept's canonical unit, with what it came from."""

    value: Decimal
    unit: str
    comparator: str | None
    entry: Entry
    when: date
    original: str  # as written in the record, e.g. "5.9 g/dL"

    @property
    def ref(self) -> str:
        return self.entry.ref


@dataclass(frozen=True)
class Lookup:
    """The outcome of looking for a value: a measurement, or why there is none usable."""

    measurement: Measurement | None
    problem: str | None  # a sentence fragment saying what is missing, when measurement is None
    evidence: tuple[str, ...] = ()


def fmt(value: Decimal) -> str:
    """A Decimal written for people: no exponent, no trailing zeros beyond what was given."""
    text = format(value.normalize(), "f") if value == value.to_integral_value() else format(
        value.quantize(Decimal("0.001")).normalize(), "f"
    )
    return text


LABELS = {
    "alt": "ALT", "ast": "AST", "egfr": "eGFR", "wbc": "WBC", "inr": "INR", "pt": "PT",
    "spo2": "SpO2", "lvef": "LVEF", "sledai-2k": "SLEDAI-2K score", "hcg": "hCG test",
    "ecog": "ECOG score", "upcr": "urine protein/creatinine ratio",
    "urine-protein-24h": "24 h urine protein", "cd19-percent": "CD19+ B cell percentage",
    "cd19-count": "CD19+ B cell count", "ana-titer": "ANA titer",
    "hemoglobin": "haemoglobin", "bilirubin": "total bilirubin",
    "body-height": "body height", "body-weight": "body weight",
}


def label(concept: Concept) -> str:
    """How a concept is named in reasons."""
    return LABELS.get(concept.name) or concept.name.replace("-", " ")


def observation_value(resource: dict[str, Any]) -> tuple[Decimal | None, str | None, str | None]:
    """(number, unit, comparator) of an Observation's numeric value, if it has one."""
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict):
        number = to_decimal(quantity.get("value"))
        unit = quantity.get("code") if isinstance(quantity.get("code"), str) else None
        if unit is None and isinstance(quantity.get("unit"), str):
            unit = quantity["unit"]
        comparator = quantity.get("comparator")
        return number, unit, comparator if isinstance(comparator, str) else None
    if "valueInteger" in resource:
        return to_decimal(resource.get("valueInteger")), None, None
    if isinstance(resource.get("valueString"), str):
        text = resource["valueString"].strip()
        match = re.fullmatch(r"(<=|>=|<|>)?\s*(-?\d+(?:\.\d+)?)", text)
        if match:
            return Decimal(match.group(2)), None, match.group(1)
    return None, None, None


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
    with_value = []
    for entry in entries:
        number, unit, comparator = observation_value(entry.resource)
        if number is not None:
            # Entries are newest first: the first with a number is the one used.
            with_value.append((entry, number, unit, comparator))
            break
    if not with_value:
        if entries:
            return Lookup(None, f"no usable {name} value (result without a number)",
                          tuple(e.ref for e in entries[:1]))
        if after:
            return Lookup(None, f"no {name} on or before {as_of.isoformat()} "
                                f"({after} result(s) after that date ignored)")
        if undated:
            return Lookup(None, f"no dated {name} result ({undated} without a date)")
        return Lookup(None, f"no {name} on record")
    entry, number, unit, comparator = with_value[0]
    when = entry.when.day  # type: ignore[union-attr]
    original = f"{fmt(number)} {unit}".strip() if unit else fmt(number)
    if not in_window(when, as_of, lookback):
        return Lookup(None, f"no {name} within {lookback} days (latest {original} on "
                            f"{when.isoformat()} is stale)", (entry.ref,))
    assert concept.unit is not None
    try:
        value = units.convert(number, unit, concept.unit, aliases=concept.unit_aliases,
                              molar_mass=concept.molar_mass)
    except units.UnitError:
        return Lookup(None, f"the unit of {name} {original} on {when.isoformat()} cannot be "
                            f"converted to {concept.unit}", (entry.ref,))
    if concept.plausible_range and comparator is None:
        low, high = concept.plausible_range
        if not low <= value <= high:
            return Lookup(None, f"{name} {original} on {when.isoformat()} is implausible "
                                f"(outside {fmt(low)}-{fmt(high)} {concept.unit})", (entry.ref,))
    return Lookup(Measurement(value, concept.unit, comparator, entry, when, original), None,
                  (entry.ref,))


def compare(value: Decimal, comparator: str | None, operator: str, threshold: Decimal
            ) -> bool | None:
    """Whether value (possibly '<'/'>' qualified) satisfies `operator threshold`; None = unsure."""
    def holds(v: Decimal) -> bool:
        return {
            ">=": v >= threshold, "<=": v <= threshold, ">": v > threshold, "<": v < threshold,
        }[operator]

    if comparator in (None, ""):
        return holds(value)
    # A qualified value stands for an interval; decide only when the whole interval agrees.
    if comparator in (">", ">="):
        if operator in (">=", ">"):
            return True if holds(value) else None
        return False if not holds(value) else None
    if comparator in ("<", "<="):
        if operator in ("<=", "<"):
            return True if holds(value) else None
        return False if not holds(value) else None
    return None


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
        match = _RATIO_TEXT.match(text.replace("\u200b", ""))
        if match and match.group(1) in (None, ">", ">="):
            # "1:160", "1/160" and ">1:640" (at least that titer) are read; "<1:40" is not a
            # titer that can show a minimum is reached, so it stays unreadable below.
            num, den = Decimal(match.group(2)), Decimal(match.group(3))
            if num > 0:
                return den / num, f"{match.group(1) or ''}{match.group(2)}:{match.group(3)}"
        return None, f"the text {text.strip()[:20]!r}"
    return None, "no titer value"
