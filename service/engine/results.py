"""Result types of a screening: per criterion, per study, per patient."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

Result = Literal["met", "not-met", "unknown"]
Status = Literal["eligible", "potential-candidate", "ineligible"]

RESULTS: tuple[str, ...] = ("met", "not-met", "unknown")
STATUSES: tuple[str, ...] = ("eligible", "potential-candidate", "ineligible")


@dataclass(frozen=True)
class Value:
    """The value a criterion compared, in the canonical unit it was compared in."""

    value: Decimal | int | str
    unit: str | None = None

    def to_json(self) -> dict[str, Any]:
        v: Decimal | int | float | str = self.value
        if isinstance(v, Decimal):
            # JSON numbers: integers stay integers, others as float with the Decimal's digits.
            v = int(v) if v == v.to_integral_value() else float(v)
        out: dict[str, Any] = {"value": v}
        if self.unit is not None:
            out["unit"] = self.unit
        return out


@dataclass(frozen=True)
class CriterionResult:
    """One criterion's decision with the reason and the evidence behind it."""

    id: str
    result: Result
    reason: str
    kind: Literal["automatic", "manual"] = "automatic"
    value: Value | None = None
    evidence: tuple[str, ...] = ()
    # "x ULN" criteria: the ULN used and where it came from (observation or CALIPER table).
    uln: Value | None = None
    uln_source: str | None = None
    # An exclusion is `met` when the record shows the patient is NOT excluded
    # (docs/writing-a-study.md, "Exclusions"). Last, so positional construction of the fields
    # above keeps working.
    type: Literal["inclusion", "exclusion"] = "inclusion"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "result": self.result,
            "reason": self.reason,
            "kind": self.kind,
            "type": self.type,
            "evidence": list(self.evidence),
        }
        if self.value is not None:
            out["value"] = self.value.to_json()
        if self.uln is not None:
            out["uln"] = {**self.uln.to_json(), "source": self.uln_source}
        return out


def overall_status(results: list[CriterionResult] | tuple[CriterionResult, ...]) -> Status:
    """Status (docs/decisions.md): any not-met -> ineligible; any unknown -> potential-candidate."""
    if any(r.result == "not-met" for r in results):
        return "ineligible"
    if any(r.result == "unknown" for r in results):
        return "potential-candidate"
    return "eligible"


@dataclass(frozen=True)
class StudyResult:
    """All criteria of one study for one patient."""

    study: str
    title: str
    criteria: tuple[CriterionResult, ...]
    status: Status = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", overall_status(self.criteria))

    def to_json(self, research_study: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"study": self.study}
        if research_study:
            out["researchStudy"] = research_study
        out["status"] = self.status
        out["criteria"] = [c.to_json() for c in self.criteria]
        return out


@dataclass(frozen=True)
class PatientEvaluation:
    """One patient's screening against one or more studies as of a date."""

    patient_id: str
    as_of: date
    studies: tuple[StudyResult, ...]
    # Died on or before as_of: every study is ineligible and no new ResearchSubject is written.
    deceased: bool = False

    def to_json(self, research_studies: dict[str, str] | None = None) -> dict[str, Any]:
        refs = research_studies or {}
        return {
            "patient": f"Patient/{self.patient_id}",
            "asOf": self.as_of.isoformat(),
            "studies": [s.to_json(refs.get(s.study)) for s in self.studies],
        }
