"""The engine's model: concepts, criteria, studies and lookup tables as frozen dataclasses."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10")
ICD10 = ICD10_SYSTEMS[0]
WILDCARD = "*"
CONCEPT_KINDS = ("observation", "condition", "medication", "procedure", "immunization")
SEXES = ("female", "male")
CRITERION_KINDS = ("automatic", "manual")
CRITERION_TYPES = ("inclusion", "exclusion")

CriterionKind = Literal["automatic", "manual"]
CriterionType = Literal["inclusion", "exclusion"]


# Other spellings of a code system that mean the same system: HL7 OIDs (as CDA-derived
# exports send them, e.g. urn:oid:2.16.840.1.113883.6.1 for LOINC) and trailing slashes.
# OIDs as registered for these systems in the HL7 OID registry (FHIR terminology pages).
SYSTEM_SYNONYMS = {
    "urn:oid:2.16.840.1.113883.6.1": "http://loinc.org",
    "http://loinc.org/": "http://loinc.org",
    "https://loinc.org": "http://loinc.org",
    "urn:oid:2.16.840.1.113883.6.96": "http://snomed.info/sct",
    "http://snomed.info/sct/": "http://snomed.info/sct",
    "urn:oid:2.16.840.1.113883.6.88": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "urn:oid:2.16.840.1.113883.6.90": "http://hl7.org/fhir/sid/icd-10-cm",
    "urn:oid:2.16.840.1.113883.6.3": "http://hl7.org/fhir/sid/icd-10",
    "urn:oid:2.16.840.1.113883.6.12": "http://www.ama-assn.org/go/cpt",
    "urn:oid:2.16.840.1.113883.6.4": "http://www.cms.gov/Medicare/Coding/ICD10",
    "urn:oid:2.16.840.1.113883.6.73": "http://www.whocc.no/atc",
}
LOINC_OID = "urn:oid:2.16.840.1.113883.6.1"


def normalise_token(system: str | None, code: str | None) -> str | None:
    """A `system|code` token in the form the index uses (ICD-10 system and code normalised)."""
    if not system or not code or not isinstance(system, str) or not isinstance(code, str):
        return None
    system = system.strip()
    system = SYSTEM_SYNONYMS.get(system, system)
    code = code.strip()
    if system in ICD10_SYSTEMS:
        # ICD-10 codes are written with or without the dot and in either case.
        return f"{ICD10}|{code.upper().replace('.', '')}"
    return f"{system}|{code}"


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


# Rules that read a diagnosis Condition (`concept`): a study's `diagnosis_criteria` name
# criteria of these rules, and whoever holds such a diagnosis is a candidate
# (docs/candidates-and-triggers.md).
DIAGNOSIS_RULES = frozenset({"diagnosis", "sle-classification"})

@dataclass(frozen=True)
class Concept:
    """A clinical concept: the codes that mean it and how its values are compared."""

    name: str
    kind: str
    codes: frozenset[str]
    prefixes: tuple[str, ...] = ()
    unit: str | None = None
    lookback_days: int = 90
    molar_mass: Decimal | None = None
    unit_aliases: Mapping[str, str] = field(default_factory=_empty)
    prednisone_equivalent: Decimal | None = None
    names: tuple[str, ...] = ()
    search: bool = True
    caliper: str | None = None
    wildcard_systems: tuple[str, ...] = ()
    plausible_range: tuple[Decimal, Decimal] | None = None
    # How reasons name the concept ("anti-dsDNA"); None falls back to the engine's labels.
    display: str | None = None
    # Coded answers that stand for a number (ECOG LOINC answers LA9622-7 = 0 ...).
    answers: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))
    # Medications: the largest gap (days) between two uses that still makes one course
    # (a monthly infusion is one course); None: the route's or the default gap.
    course_gap_days: int | None = None


@dataclass(frozen=True)
class Applicability:
    """Who a criterion applies to; anyone else meets it as "not applicable"."""

    sex: str | None = None
    min_age: int | None = None
    max_age: int | None = None


@dataclass(frozen=True)
class CriterionMapping:
    """One criterion of a study: spec id, seed text, kind, rule and its checked parameters."""

    id: str
    text: str
    rule: str
    kind: CriterionKind
    type: CriterionType
    # Values as the rule's parameter declarations parsed them (see engine/registry.py).
    params: Mapping[str, Any]
    source: str
    applies: Applicability | None = None
    # Per-criterion wording for reasons: {"met": ..., "not-met": ...} replaces the rule's own.
    wording: Mapping[str, str] = field(default_factory=_empty)
    # Simplified Chinese for the pages: a short name (English pages derive theirs from the id)
    # and the seed text. Never used by the rules, never written to FHIR.
    name_zh: str | None = None
    text_zh: str | None = None
    # A part of a combination: the id of the whole criterion it belongs to (None: a whole one).
    part_of: str | None = None
    # A manual part whose per-patient confirmations count in every study (`shared = true`).
    shared: bool = False


@dataclass(frozen=True)
class StudyMapping:
    """A study: key, title, registry number and its criteria in the study file's order."""

    key: str
    title: str
    registry_id: str | None
    seed: str | None
    criteria: tuple[CriterionMapping, ...]
    source: str
    title_zh: str | None = None  # the title in Simplified Chinese, for the pages
    # Ids of the criteria whose diagnosis makes a patient a candidate of the study
    # (docs/candidates-and-triggers.md): declared in the mapping (`study.diagnosis_criteria`).
    diagnosis_criteria: tuple[str, ...] = ()


@dataclass(frozen=True)
class Product:
    """A product-level medication code resolved to its ingredient and strength."""

    ingredient: str
    strength_mg: Decimal | None


@dataclass(frozen=True)
class FrequencyPattern:
    """A frequency written in words, as a regular expression and the Timing.repeat it means;
    `frequency` or `period` None stands for the number the expression's group `n` captured."""

    regex: re.Pattern[str]
    frequency: Decimal | None
    period: Decimal | None
    unit: str


@dataclass(frozen=True)
class FrequencyVocabulary:
    """Dosing frequencies given only as text: exact phrases (administrations a day) and
    patterns ("every 12 hours"), both read on lower-cased text with spaces collapsed."""

    phrases: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))
    patterns: tuple[FrequencyPattern, ...] = ()


@dataclass(frozen=True)
class Courses:
    """Which gap joins two medication uses into one course (days): the default for periods
    (refills rarely line up to the day), the default for a series of administrations
    (docs/decisions.md: <= 35 days), and per route (`system|code`); an agent's own gap wins."""

    gap_days: int = 7
    administration_gap_days: int = 35
    routes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class UlnRow:
    """One CALIPER row: analyte, sex (M, F or MF), age range [from, until) in its unit, ULN."""

    analyte: str
    unit: str
    sex: str
    age_from: int
    age_until: int
    age_unit: str  # "day" or "year" (whole years, as the table is written)
    upper: Decimal


@dataclass(frozen=True)
class Mappings:
    """Everything the engine needs from the mappings: concepts, studies and lookup tables."""

    concepts: Mapping[str, Concept]
    studies: Mapping[str, StudyMapping]
    unit_aliases: Mapping[str, str]
    products: Mapping[str, Product]
    uln_rows: tuple[UlnRow, ...]
    code_index: Mapping[str, tuple[str, ...]]
    prefix_index: tuple[tuple[str, str], ...]
    directory: str
    frequencies: FrequencyVocabulary = field(default_factory=FrequencyVocabulary)
    courses: Courses = field(default_factory=Courses)

    def concepts_for(self, system: str | None, code: str | None) -> tuple[str, ...]:
        """Concept names a coding belongs to (exact codes, ICD-10 prefixes, wildcard systems)."""
        token = normalise_token(system, code)
        if token is None:
            return ()
        found = self.code_index.get(token, ())
        if self.prefix_index:
            extra = tuple(name for prefix, name in self.prefix_index if token.startswith(prefix))
            if extra:
                found = tuple(dict.fromkeys(found + extra))
        wildcard = self.code_index.get(f"{system}|{WILDCARD}")
        if wildcard:
            found = tuple(dict.fromkeys(found + wildcard))
        return found

    def observation_codes(self) -> tuple[str, ...]:
        """Sorted `system|code` tokens of every Observation concept (for the retrieval search)."""
        return self._observation_codes

    @cached_property
    def _observation_codes(self) -> tuple[str, ...]:
        # Computed once: the mappings never change after loading.
        tokens: set[str] = set()
        for concept in self.concepts.values():
            if concept.kind != "observation" or not concept.search:
                continue
            for token in concept.codes:
                system, _, code = token.partition("|")
                # A wildcard code is searched by system alone (`code=system|`).
                tokens.add(f"{system}|" if code == WILDCARD else token)
                if system == "http://loinc.org" and code != WILDCARD:
                    # Exports derived from CDA name LOINC by its OID; servers match systems
                    # literally, so that spelling is searched too.
                    tokens.add(f"{LOINC_OID}|{code}")
        return tuple(sorted(tokens))
