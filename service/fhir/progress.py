"""A ResearchSubject's history as R5 `progress` entries on R4 (pure): build, read, reasons.

docs/coordinator-funnel.md: every change of a subject's state is kept on the ResearchSubject
with the cross-version extension `http://hl7.org/fhir/5.0/StructureDefinition/extension-ResearchSubject.progress`
(`type` the kind of state, `subjectState`, `reason`, `startDate`), so the history lives in
FHIR. The screening appends an entry when the computed status changes; a person's workflow
change appends one with its reason. Entries are only ever appended: a re-screen keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PROGRESS_EXTENSION = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ResearchSubject.progress")
# R5 ResearchSubjectStateType: `Enrollment` is a state with one value at a time (a milestone
# stays true once reached); every entry we write is a state.
STATE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-subject-state-type"
STATE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-subject-state"
REASON_SYSTEM = "urn:trial-eligibility:progress-reason"
CRITERION_SYSTEM = "urn:trial-eligibility:criterion"
MAX_WHY = 500

# The reasons a person gives (docs/coordinator-funnel.md: declined by the family, clinician
# declined, not approached and why, screen failure and the criterion, withdrawn and why), and
# the computed status change the screening records.
REASONS: Mapping[str, str] = {
    "family-declined": "Declined by the family",
    "clinician-declined": "Clinician declined",
    "not-approached": "Not approached",
    "screen-failure": "Screen failure",
    "withdrawn": "Withdrawn",
    "other": "Other",
}
SCREENED = "screened"
# Reasons that must say why in words, and the one that must name the criterion.
NEEDS_WHY = frozenset({"not-approached", "withdrawn", "other"})
NEEDS_CRITERION = frozenset({"screen-failure"})
# Workflow statuses by which a patient leaves the funnel: a reason is required.
EXIT_STATUSES = frozenset({"not-registered", "withdrawn", "off-study"})


class ReasonError(ValueError):
    """A workflow reason that cannot be recorded as given (nothing is written); `kind` says
    what is missing (needs-reason, unknown-reason, needs-why, needs-criterion)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Reason:
    """Why a state was entered: a code of REASONS, the words, and the criterion if any."""

    code: str
    why: str = ""
    criterion: str = ""

    @property
    def label(self) -> str:
        """'Screen failure: sledai-2k', 'Withdrawn: moved away', 'Declined by the family'."""
        base = REASONS.get(self.code, "Screened" if self.code == SCREENED else self.code)
        detail = self.criterion or self.why
        return f"{base}: {detail}" if detail else base

    def concept(self) -> dict[str, Any]:
        """The CodeableConcept of the reason (with the criterion's coding for a screen failure)."""
        codings = [{"system": REASON_SYSTEM, "code": self.code,
                    "display": REASONS.get(self.code, "Screened")}]
        if self.criterion:
            codings.append({"system": CRITERION_SYSTEM, "code": self.criterion})
        out: dict[str, Any] = {"coding": codings}
        if self.why:
            out["text"] = self.why
        return out


def reason_for(status: str, code: str, why: str, criterion: str,
               criteria: Sequence[str]) -> Reason | None:
    """The reason a person gave for `status`, checked; ReasonError when it is incomplete."""
    code, why, criterion = code.strip(), " ".join(why.split())[:MAX_WHY], criterion.strip()
    if not code:
        if status in EXIT_STATUSES:
            raise ReasonError("needs-reason",
                              f"Say why the patient is {status}: choose a reason.")
        return None
    if code not in REASONS:
        raise ReasonError("unknown-reason", "Unknown reason.")
    if code in NEEDS_WHY and not why:
        raise ReasonError("needs-why", f"{REASONS[code]}: say why in a few words.")
    if code in NEEDS_CRITERION:
        if criterion not in criteria:
            raise ReasonError("needs-criterion",
                              "Screen failure: choose the criterion that failed.")
    else:
        criterion = ""
    return Reason(code, why, criterion)


def progress_entry(state: str, start: datetime, reason: Reason | None = None) -> dict[str, Any]:
    """One R5 progress entry: a state entered at `start`, with its reason."""
    if start.tzinfo is None:
        raise ValueError("startDate must carry a time zone")
    parts: list[dict[str, Any]] = [
        {"url": "type", "valueCodeableConcept": {"coding": [
            {"system": STATE_TYPE_SYSTEM, "code": "Enrollment", "display": "Enrollment status"}]}},
        {"url": "subjectState", "valueCodeableConcept": {"coding": [
            {"system": STATE_SYSTEM, "code": state}]}},
    ]
    if reason is not None:
        parts.append({"url": "reason", "valueCodeableConcept": reason.concept()})
    parts.append({"url": "startDate", "valueDateTime": start.isoformat(timespec="seconds")})
    return {"url": PROGRESS_EXTENSION, "extension": parts}


def screened_entry(status: str, start: datetime, not_met: Sequence[str]) -> dict[str, Any]:
    """The entry the screening appends when the computed status changes."""
    why = ("not met: " + ", ".join(not_met)) if status == "ineligible" and not_met else ""
    return progress_entry(status, start, Reason(SCREENED, why[:MAX_WHY]))


@dataclass(frozen=True)
class Progress:
    """One history entry read back: state, when, reason (None if not given)."""

    state: str
    start: str
    reason: Reason | None

    @property
    def by_screening(self) -> bool:
        """Appended by the screening (a computed status), not by a person."""
        return self.reason is not None and self.reason.code == SCREENED


def _code(concept: Any, system: str) -> str:
    for coding in (concept or {}).get("coding") or () if isinstance(concept, Mapping) else ():
        if isinstance(coding, Mapping) and coding.get("system") == system:
            return str(coding.get("code") or "")
    return ""


def history(resource: Mapping[str, Any] | None) -> list[Progress]:
    """The progress entries of a ResearchSubject, in the order they were appended."""
    out = []
    for ext in (resource or {}).get("extension") or ():
        if not (isinstance(ext, Mapping) and ext.get("url") == PROGRESS_EXTENSION):
            continue
        parts = {p.get("url"): p for p in ext.get("extension") or () if isinstance(p, Mapping)}
        state = _code((parts.get("subjectState") or {}).get("valueCodeableConcept"),
                      STATE_SYSTEM)
        if not state:
            continue
        concept = (parts.get("reason") or {}).get("valueCodeableConcept")
        code = _code(concept, REASON_SYSTEM)
        reason = None
        if code:
            reason = Reason(code, str((concept or {}).get("text") or ""),
                            _code(concept, CRITERION_SYSTEM))
        out.append(Progress(state, str((parts.get("startDate") or {}).get("valueDateTime")
                                       or ""), reason))
    return out
