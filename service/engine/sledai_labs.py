"""SLEDAI-2K laboratory descriptors read from a patient record (pure).

The engine's lower bound (the `sledai-2k` reason) and the worksheet's pre-filled items both
come from `lab_findings`, so they cannot disagree. Which codes mean each test is data
(mappings/concepts.toml, by the concept names below); values are converted with the engine's
UCUM conversion into the unit each limit is written in and compared as Decimal.

Definitions and limits: Gladman DD, Ibanez D, Urowitz MB. Systemic lupus erythematosus
disease activity index 2000. J Rheumatol 2002;29:288-91.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from service.engine import units
from service.engine.coded import coded_answer
from service.engine.labs import compare, fmt, in_window, reading, unit_of
from service.engine.model import Concept
from service.engine.numbers import to_decimal
from service.engine.record import (
    USABLE_OBSERVATION,
    Entry,
    PatientRecord,
    as_list,
    codings,
)

# Gladman 2002: a descriptor counts when "present at the time of the visit or in the preceding
# 30 days" (inclusive, as every look-back of the engine).
WINDOW_DAYS = 30


@dataclass(frozen=True)
class LabTest:
    """How results of one concept show a descriptor: a value against a limit written in a unit,
    or against the result's own reference range (limit None), or a coded positive result."""

    concept: str
    operator: str  # ">" or "<"
    limit: Decimal | None
    units: tuple[str, ...] = ()  # the units the limit holds in (the first one that converts)
    presence: bool = False  # a coded positive / "present" result shows the descriptor too


@dataclass(frozen=True)
class Finding:
    """A lab descriptor read from the record: present, with the evidence and why."""

    key: str
    present: bool
    reason: str
    evidence: tuple[str, ...] = ()


_D = Decimal
LAB_TESTS: Mapping[str, tuple[LabTest, ...]] = {
    # Gladman 2002 "Proteinuria: >0.5 gram/24 hours"; a spot protein/creatinine ratio in g/g
    # stands for grams a day (docs/decisions.md: `proteinuria` reads UPCR in g/g and 24 h protein in
    # g/day against one limit).
    "proteinuria": (LabTest("urine-protein-24h", ">", _D("0.5"), ("g/(24.h)",)),
                    LabTest("upcr", ">", _D("0.5"), ("g/g",))),
    # Gladman 2002 "Hematuria: >5 red blood cells/high power field"
    "hematuria": (LabTest("urine-rbc-hpf", ">", _D(5), ("/[HPF]",)),),
    # Gladman 2002 "Pyuria: >5 white blood cells/high power field"
    "pyuria": (LabTest("urine-wbc-hpf", ">", _D(5), ("/[HPF]",)),),
    # Gladman 2002 "Urinary casts: heme-granular or red blood cell casts": any one seen, in
    # either field, or reported present.
    "urinary-casts": (LabTest("urine-casts", ">", _D(0), ("/[LPF]", "/[HPF]"), presence=True),),
    # Gladman 2002 "Low complement: decrease in CH50, C3, or C4 below the lower limit of normal"
    "low-complement": (LabTest("c3", "<", None), LabTest("c4", "<", None)),
    # Gladman 2002 "Increased DNA binding: increased DNA binding above normal range"
    "increased-dna-binding": (LabTest("anti-dsdna", ">", None, presence=True),),
    # Gladman 2002 "Fever: >38 degrees C"
    "fever": (LabTest("body-temperature", ">", _D(38), ("Cel",)),),
    # Gladman 2002 "Thrombocytopenia: <100,000 platelets / x10^9/L"
    "thrombocytopenia": (LabTest("platelets", "<", _D(100), ("10*9/L",)),),
    # Gladman 2002 "Leukopenia: <3000 white blood cells / x10^9/L"
    "leukopenia": (LabTest("wbc", "<", _D(3), ("10*9/L",)),),
}  # fmt: skip
# How the limits' units are written in reasons.
_SHOWN_UNIT = {"Cel": "°C", "10*9/L": "x 10^9/L", "/[HPF]": "/hpf", "/[LPF]": "/lpf",
               "g/(24.h)": "g/24 h", "g/g": "g/g"}
# v3-ObservationInterpretation: above / below the normal range as the lab flagged it.
_FLAGGED = {">": frozenset({"H", "HH", "HU"}), "<": frozenset({"L", "LL", "LU"})}


def lab_concepts() -> tuple[str, ...]:
    """Every concept name the lab descriptors read (the loader checks they exist)."""
    return tuple(dict.fromkeys(t.concept for tests in LAB_TESTS.values() for t in tests))


def _limit(test: LabTest, entry: Entry, concept: Concept, unit: str | None) -> Decimal | None:
    """The result's own reference range bound (low for '<', high for '>') in the value's unit."""
    side = "low" if test.operator == "<" else "high"
    for item in as_list(entry.resource.get("referenceRange")):
        bound = item.get(side) if isinstance(item, dict) else None
        number = to_decimal(bound.get("value")) if isinstance(bound, dict) else None
        if number is None or not isinstance(bound, dict):
            continue
        given = bound.get("code") or bound.get("unit") or unit
        if given == unit:
            return number
        if unit is None or not isinstance(given, str):
            continue  # a bound with a unit against a value without one: not comparable
        try:
            return units.convert(number, given, unit, aliases=concept.unit_aliases,
                                 molar_mass=concept.molar_mass)
        except units.UnitError:
            continue
    return None


def _flagged(test: LabTest, entry: Entry) -> bool:
    for item in as_list(entry.resource.get("interpretation")):
        if {c.get("code") for c in codings(item)} & _FLAGGED[test.operator]:
            return True
    return False


def _shows(test: LabTest, entry: Entry, concept: Concept) -> str | None:
    """The finding's words when one result shows the descriptor; None when it does not, or
    cannot tell (only a finding that is present is ever worded: `findings_of`)."""
    resource = entry.resource
    name = concept.display or concept.name
    value = reading(resource, concept.answers)
    if value is None:
        answer = coded_answer(resource) if test.presence else None
        if answer is not None:  # a coded result says it all, whatever its flags
            return f"{name} positive" if answer == "positive" else None
        if test.limit is None and _flagged(test, entry):
            return f"{name} flagged {'low' if test.operator == '<' else 'high'}"
        return None
    unit, _ = unit_of(value, resource, concept)
    shown = (f"{fmt(value.low)}-{fmt(value.high)}" if value.high is not None
             else f"{value.comparator or ''}{fmt(value.low)}")
    if test.limit is None:
        # Against its own range, in the unit it was written in (the range is converted).
        limit = _limit(test, entry, concept, unit)
        if limit is None:
            return (f"{name} {shown} {unit or ''}".rstrip() + " flagged by the laboratory"
                    if _flagged(test, entry) else None)
        side = "lower" if test.operator == "<" else "upper"
        if not compare(value.low, value.comparator, test.operator, limit, value.high):
            return None
        return f"{name} {shown} {unit or ''} ({side} limit {fmt(limit)})".replace("  ", " ")
    assert test.limit is not None
    for target in test.units:
        try:
            low = units.convert(value.low, unit, target, aliases=concept.unit_aliases,
                                molar_mass=concept.molar_mass)
            high = None if value.high is None else units.convert(
                value.high, unit, target, aliases=concept.unit_aliases,
                molar_mass=concept.molar_mass)
        except units.UnitError:
            continue
        if concept.plausible_range and value.comparator in (None, "range"):
            bottom, top = concept.plausible_range
            if not all(bottom <= v <= top for v in (low, high) if v is not None):
                return None  # implausible: a typing slip, not a finding
        if not compare(low, value.comparator, test.operator, test.limit, high):
            return None
        converted = (f"{fmt(low)}-{fmt(high)}" if high is not None
                     else f"{value.comparator or ''}{fmt(low)}")
        return f"{name} {converted} {_SHOWN_UNIT.get(target, target)}"
    # A unit nothing converts gives no finding, never a comparison across units.
    return None


def _entries(record: PatientRecord, test: LabTest, as_of: date, window_days: int
             ) -> list[Entry]:
    # record.entries leaves out entered-in-error and cancelled results; preliminary ones are
    # not used either (the engine's rule for every lab).
    return [e for e in record.entries(test.concept)
            if e.when is not None and in_window(e.when.day, as_of, window_days)
            and e.resource.get("status") in USABLE_OBSERVATION]


def lab_findings(record: PatientRecord, as_of: date, window_days: int = WINDOW_DAYS
                 ) -> dict[str, Finding]:
    """Each lab descriptor: present when any usable result in the window shows it."""
    return findings_of(record, LAB_TESTS, as_of, window_days)


def findings_of(record: PatientRecord, lab_tests: Mapping[str, tuple[LabTest, ...]],
                as_of: date, window_days: int) -> dict[str, Finding]:
    """Each item of `lab_tests`: present when any usable result in the window shows it
    (window 0: every result up to the as-of date; the 2019 EULAR/ACR items count "ever")."""
    out: dict[str, Finding] = {}
    for key, tests in lab_tests.items():
        hits: list[tuple[date, str, str]] = []
        seen = 0
        for test in tests:
            concept = record.mappings.concepts.get(test.concept)
            if concept is None:
                continue
            for entry in _entries(record, test, as_of, window_days):
                seen += 1
                text = _shows(test, entry, concept)
                if text is not None:
                    assert entry.when is not None
                    hits.append((entry.when.day, entry.ref, text))
        if hits:
            hits.sort(key=lambda h: (h[0], h[1]), reverse=True)
            day, _, text = hits[0]
            refs = tuple(dict.fromkeys(ref for _, ref, _ in hits))
            out[key] = Finding(key, True, f"{text} on {day.isoformat()}", refs)
        elif seen:
            out[key] = Finding(key, False, f"not shown by {seen} result(s)"
                               + (" in the window" if window_days else ""))
        else:
            out[key] = Finding(key, False, "no result in the window" if window_days
                               else "no result on record")
    return out


def evidence_of(findings: Iterable[Finding]) -> tuple[str, ...]:
    """Every evidence reference of the present findings, once, in order."""
    return tuple(dict.fromkeys(r for f in findings if f.present for r in f.evidence))
