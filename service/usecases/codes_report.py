"""Codes report: which of a FHIR server's codes and units the mappings do not understand.

Reads Observation, Condition, Procedure and medication codes in bulk (`_elements`, paged,
bounded), counts them by code, and lists (1) codes the mappings do not know whose display
looks like one of the mapped concepts ("HGB", "ALT (SGPT)"), and (2) unit strings seen for a
mapped concept that cannot be converted to its canonical unit. Only codes, displays, unit
strings and counts leave this module: no ids, subjects, dates or values (no PHI).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from service.engine import units
from service.fhir.errors import FhirRecordTooLarge

# What is read of each type: only the elements that carry a code (and the unit).
READS: tuple[tuple[str, str], ...] = (
    ("Observation", "code,valueQuantity"),
    ("Condition", "code"),
    ("Procedure", "code"),
    ("MedicationRequest", "medicationCodeableConcept"),
    ("MedicationStatement", "medicationCodeableConcept"),
    ("MedicationAdministration", "medicationCodeableConcept"),
    ("Medication", "code"),
)
# The concept kinds a resource type's codes can belong to.
KINDS = {
    "Observation": ("observation",), "Condition": ("condition",),
    "Procedure": ("procedure",), "MedicationRequest": ("medication",),
    "MedicationStatement": ("medication",), "MedicationAdministration": ("medication",),
    "Medication": ("medication",),
}
MEDICATION_CODE = {"MedicationRequest", "MedicationStatement", "MedicationAdministration"}
DISPLAY_LIMIT = 80  # displays are cut: they name a test, never a person


class Searcher(Protocol):
    """What the report needs of a FHIR client: a paged search."""

    def search(self, resource_type: str, params: Any = None) -> Iterator[dict[str, Any]]: ...


class MappingsLike(Protocol):
    """The part of the loaded mappings the report reads."""

    @property
    def concepts(self) -> Mapping[str, Any]: ...

    def concepts_for(self, system: str | None, code: str | None) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class UnmappedCode:
    """A code the mappings do not know, whose display looks like one of our concepts."""

    concept: str
    resource_type: str
    system: str
    code: str
    display: str
    count: int


@dataclass(frozen=True)
class UnconvertibleUnit:
    """A unit string seen on a mapped concept that does not convert to its canonical unit."""

    concept: str
    unit: str
    canonical: str
    count: int


@dataclass
class CodesReport:
    """What the report found, and how much it read."""

    unmapped: list[UnmappedCode] = field(default_factory=list)
    units: list[UnconvertibleUnit] = field(default_factory=list)
    read: dict[str, int] = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)
    other_unmapped: int = 0  # unmapped codes that look like none of our concepts

    def to_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "truncated": self.truncated,
            "unmappedCodes": [
                {"concept": u.concept, "resourceType": u.resource_type, "system": u.system,
                 "code": u.code, "display": u.display, "count": u.count}
                for u in self.unmapped],
            "unconvertibleUnits": [
                {"concept": u.concept, "unit": u.unit, "canonicalUnit": u.canonical,
                 "count": u.count} for u in self.units],
            "otherUnmappedCodes": self.other_unmapped,
        }


class _Matcher:
    """Finds which concept a display text looks like, by the concepts' names."""

    def __init__(self, mappings: MappingsLike) -> None:
        self.mappings = mappings

    @cached_property
    def patterns(self) -> list[tuple[str, str, re.Pattern[str]]]:
        out = []
        for concept in self.mappings.concepts.values():
            if not getattr(concept, "search", True):
                continue
            names = {*getattr(concept, "names", ()), concept.name.replace("-", " "),
                     (getattr(concept, "display", None) or "").lower()}
            for name in sorted(n for n in names if n):
                # Whole words only: "alt" must not match "salt".
                pattern = re.compile(r"(?<![a-z0-9])" + re.escape(name.lower()) + r"(?![a-z0-9])")
                out.append((concept.kind, concept.name, pattern))
        # Longer names first: "lupus nephritis" before "lupus erythematosus".
        out.sort(key=lambda item: -len(item[2].pattern))
        return out

    def concept_of(self, text: str, kinds: tuple[str, ...]) -> str | None:
        lowered = text.lower()
        for kind, name, pattern in self.patterns:
            if kind in kinds and pattern.search(lowered):
                return name
        return None


def _codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict) or not isinstance(concept.get("coding"), list):
        return []
    return [c for c in concept["coding"] if isinstance(c, dict)]


def _code_of(resource: dict[str, Any]) -> Any:
    if resource.get("resourceType") in MEDICATION_CODE:
        return resource.get("medicationCodeableConcept")
    return resource.get("code")


class _Tally:
    """Counts while reading, so nothing but counts is kept."""

    def __init__(self, mappings: MappingsLike) -> None:
        self.mappings = mappings
        self.matcher = _Matcher(mappings)
        # (resource type, system, code, display) -> count, for codes no concept knows
        self.unknown: Counter[tuple[str, str, str, str]] = Counter()
        # (concept, unit) -> count, for units of mapped Observations
        self.units: Counter[tuple[str, str]] = Counter()

    def add(self, resource: dict[str, Any]) -> None:
        rtype = str(resource.get("resourceType"))
        code = _code_of(resource)
        codings = _codings(code)
        known: tuple[str, ...] = ()
        for coding in codings:
            known += self.mappings.concepts_for(coding.get("system"), coding.get("code"))
        text = code.get("text") if isinstance(code, dict) else None
        if known:
            if rtype == "Observation":
                self._unit(resource, known)
            return
        if not codings and isinstance(text, str) and text.strip():
            self.unknown[(rtype, "", "", text.strip()[:DISPLAY_LIMIT])] += 1
            return
        for coding in codings[:1] if codings else ():
            display = coding.get("display") if isinstance(coding.get("display"), str) else text
            self.unknown[(rtype, str(coding.get("system") or ""), str(coding.get("code") or ""),
                          (display or "").strip()[:DISPLAY_LIMIT])] += 1

    def _unit(self, resource: dict[str, Any], known: tuple[str, ...]) -> None:
        quantity = resource.get("valueQuantity")
        if not isinstance(quantity, dict):
            return
        unit = quantity.get("code") if isinstance(quantity.get("code"), str) else None
        unit = unit or (quantity.get("unit") if isinstance(quantity.get("unit"), str) else None)
        for name in known:
            self.units[(name, unit if unit is not None else "")] += 1


def _unconvertible(mappings: MappingsLike, units_seen: Counter[tuple[str, str]]
                   ) -> list[UnconvertibleUnit]:
    out = []
    for (name, unit), count in units_seen.items():
        concept = mappings.concepts.get(name)
        canonical = getattr(concept, "unit", None)
        if concept is None or canonical is None:
            continue
        if unit and units.understood(unit, canonical, aliases=concept.unit_aliases,
                                     molar_mass=concept.molar_mass):
            continue
        if not unit and units.understood(None, canonical):
            continue
        out.append(UnconvertibleUnit(name, unit or "(no unit)", canonical, count))
    return sorted(out, key=lambda u: (-u.count, u.concept, u.unit))


def build_report(mappings: MappingsLike, resources: Iterable[dict[str, Any]]) -> CodesReport:
    """The report over resources already read (pure: the CLI and the tests feed it)."""
    tally = _Tally(mappings)
    report = CodesReport()
    for resource in resources:
        if not isinstance(resource, dict) or resource.get("resourceType") not in KINDS:
            continue
        rtype = resource["resourceType"]
        report.read[rtype] = report.read.get(rtype, 0) + 1
        tally.add(resource)
    for (rtype, system, code, display), count in tally.unknown.items():
        concept = tally.matcher.concept_of(display, KINDS[rtype]) if display else None
        if concept is None:
            report.other_unmapped += count
            continue
        report.unmapped.append(UnmappedCode(concept, rtype, system, code, display, count))
    report.unmapped.sort(key=lambda u: (u.concept, -u.count, u.system, u.code, u.display))
    report.units = _unconvertible(mappings, tally.units)
    return report


def read_codes(client: Searcher, *, page_size: int, max_per_type: int,
               on_truncated: Callable[[str], None]) -> Iterator[dict[str, Any]]:
    """Every resource of the report's types, only their code elements, at most N per type.

    A server may ignore `_elements` and send whole resources: they are reduced to their code
    at once, and only counted.
    """
    for rtype, elements in READS:
        params = [("_elements", elements), ("_count", str(page_size))]
        seen = 0
        try:
            for resource in client.search(rtype, params):
                if not isinstance(resource, dict) or resource.get("resourceType") != rtype:
                    continue  # _include'd or stray resources
                seen += 1
                if seen > max_per_type:
                    on_truncated(rtype)
                    break
                yield _reduced(resource)
        except FhirRecordTooLarge as exc:  # the client's own page or resource cap
            on_truncated(f"{rtype} ({type(exc).__name__})")


def _reduced(resource: dict[str, Any]) -> dict[str, Any]:
    """Only what the report reads of a resource: type, code, and the unit of a quantity."""
    out: dict[str, Any] = {"resourceType": resource.get("resourceType")}
    for key in ("code", "medicationCodeableConcept"):
        if key in resource:
            out[key] = resource[key]
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict):
        out["valueQuantity"] = {k: quantity[k] for k in ("unit", "code", "system")
                                if k in quantity}
    return out


def run(client: Searcher, mappings: MappingsLike, *, page_size: int = 500,
        max_per_type: int = 100_000) -> CodesReport:
    """Read the server's codes (bounded) and build the report."""
    truncated: list[str] = []
    report = build_report(mappings, read_codes(client, page_size=page_size,
                                               max_per_type=max_per_type,
                                               on_truncated=truncated.append))
    report.truncated = truncated
    return report


def format_report(report: CodesReport) -> str:
    """The report as text for a terminal."""
    lines = ["Read: " + ", ".join(f"{k} {v}" for k, v in sorted(report.read.items()))]
    if report.truncated:
        lines.append("Stopped early (limit reached) for: " + ", ".join(report.truncated))
    lines += ["", "Codes the mappings do not know that look like a mapped concept:"]
    if not report.unmapped:
        lines.append("  (none)")
    for u in report.unmapped:
        token = f"{u.system}|{u.code}" if u.code else "(text only)"
        lines.append(f"  {u.concept:22} {u.count:7}  {u.resource_type:20} {token}  {u.display!r}")
    lines += ["", "Units seen on mapped concepts that cannot be converted:"]
    if not report.units:
        lines.append("  (none)")
    for v in report.units:
        lines.append(f"  {v.concept:22} {v.count:7}  {v.unit!r} (compared in {v.canonical})")
    lines += ["", f"Other unmapped codes (not like any concept): {report.other_unmapped}",
              "", "To use a local code, add it to mappings/site.toml, e.g.:",
              "  [concepts.hemoglobin]", '  codes = ["http://hospital.example/lab|HGB"]',
              "and a unit spelling to mappings/units.toml [unit_aliases]."]
    return "\n".join(lines)

