"""What every rule reads: the record, the mappings, the as-of date and the study key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType

from service.engine.medications import MedicationUse, medication_uses
from service.engine.model import Concept, Mappings
from service.engine.record import PatientRecord
from service.engine.sledai_labs import WINDOW_DAYS


@dataclass
class Context:
    """One patient's evaluation against one study; medication uses are computed once, lazily."""

    record: PatientRecord
    mappings: Mappings
    as_of: date
    study: str
    _uses: list[MedicationUse] | None = None
    # Study key -> "ResearchStudy/<id>" on the FHIR server, when the caller knows them
    # (a confirmation's Observation.focus names a study by such a reference).
    research_studies: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # Days of laboratory results the SLEDAI-2K lower bound reads (SLEDAI_WINDOW_DAYS), the
    # same window as the worksheet's, so that the two always give the same total.
    sledai_window_days: int = WINDOW_DAYS

    def concept(self, name: str) -> Concept:
        """The concept of that name (the loader checked every name a criterion uses)."""
        return self.mappings.concepts[name]

    @property
    def uses(self) -> list[MedicationUse]:
        """The patient's medication uses up to the as-of date."""
        if self._uses is None:
            self._uses = medication_uses(self.record, self.mappings, self.as_of)
        return self._uses
