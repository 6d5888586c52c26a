"""Check the mappings without a FHIR server: load every folder and list each study's criteria."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from service.engine.model import CriterionMapping
from service.mappings import load_mappings
from service.mappings.studies import manual_parts


@dataclass(frozen=True)
class CriterionLine:
    """One criterion as the check lists it; `parts` are the ids of its manual parts."""

    id: str
    type: str
    kind: str
    rule: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class StudySummary:
    """A loaded study: key, title, registry number, the file it came from and its criteria."""

    key: str
    title: str
    registry_id: str | None
    source: str
    criteria: tuple[CriterionLine, ...]


def _line(crit: CriterionMapping) -> CriterionLine:
    parts = tuple(p.id for p in manual_parts(crit) if p is not crit)
    return CriterionLine(crit.id, crit.type, crit.kind, crit.rule, parts)


def check_mappings(folders: Sequence[Path | str]) -> list[StudySummary]:
    """Load the folders together (as MAPPINGS_DIR would); MappingError names file and key."""
    mappings = load_mappings(list(folders))
    return [StudySummary(s.key, s.title, s.registry_id, s.source,
                         tuple(_line(c) for c in s.criteria))
            for s in mappings.studies.values()]
