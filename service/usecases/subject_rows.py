"""Reading stored ResearchSubjects (pure): rows of the worklist, criteria of the patient page."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.fhir import research_subject as rs
from service.usecases.study_funnel import LogLine

# The criterion id of the engine's deceased rule, as stored in a ResearchSubject.
DECEASED = "deceased"

# The engine's sledai-2k reason when no score is recorded: "lab items alone score 10: ...".
_LOWER_BOUND = re.compile(r"lab items alone score (\d+)")
_ACRONYMS = {
    "inr": "INR", "pt": "PT", "alt": "ALT", "ast": "AST", "ecg": "ECG", "ana": "ANA",
    "ecog": "ECOG", "egfr": "eGFR", "sledai": "SLEDAI", "2k": "2K", "cd19": "CD19",
    "lvef": "LVEF", "spo2": "SpO2", "wbc": "WBC", "ln": "LN", "sle": "SLE", "b": "B",
    "eular": "EULAR", "acr": "ACR",
}  # fmt: skip


def label(criterion_id: str) -> str:
    """A short human label of a criterion id ('sledai-2k' -> 'SLEDAI-2K', 'ln-biopsy')."""
    parts = criterion_id.split("-")
    words = [_ACRONYMS.get(w, w) for w in parts]
    text = "-".join(words) if criterion_id.startswith("sledai") else " ".join(words)
    return text if parts[0] in _ACRONYMS else text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Criterion:
    """One criterion as stored in a ResearchSubject's criterion extension."""

    id: str
    result: str
    reason: str
    kind: str = "automatic"
    type: str | None = None
    value: str | None = None
    uln: str | None = None
    uln_source: str | None = None
    evidence: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return label(self.id)


def with_unit(number: str, unit: str | None) -> str:
    """A number with its unit as pages show it: no unit for '1' or an annotation alone ('{score}':
    a count or score), no space before '%' (as the engine's reasons write them)."""
    if not unit or unit == "1" or re.fullmatch(r"\{[^{}]*\}", unit):
        return number
    return f"{number}{unit}" if unit == "%" else f"{number} {unit}"


# UCUM time units read better spelt out on a page.
_UNITS = {"a": "years", "mo": "months", "wk": "weeks", "d": "days", "h": "hours"}


def _shown(part: Mapping[str, Any]) -> str | None:
    if "valueQuantity" in part:
        q = part["valueQuantity"] or {}
        unit = str(q.get("unit") or "")
        return with_unit(str(q.get("value")), _UNITS.get(unit, unit))
    for key in ("valueString", "valueInteger", "valueBoolean", "valueCode"):
        if key in part:
            return str(part[key])
    return None


def criteria_of(resource: Mapping[str, Any]) -> list[Criterion]:
    """The criterion extensions of a ResearchSubject, in study order."""
    out = []
    for ext in resource.get("extension") or ():
        if not isinstance(ext, Mapping) or ext.get("url") != rs.CRITERION_EXTENSION:
            continue
        fields: dict[str, Any] = {"evidence": []}
        for part in ext.get("extension") or ():
            name = part.get("url")
            if name == "evidence":
                ref = (part.get("valueReference") or {}).get("reference")
                if ref:
                    fields["evidence"].append(ref)
            elif name in ("id", "result", "reason", "kind", "type") or name in ("value", "uln"):
                fields[name] = _shown(part)
            elif name == "ulnSource":
                fields["uln_source"] = _shown(part)
        if "id" in fields and "result" in fields:
            fields["evidence"] = tuple(fields["evidence"])
            fields.setdefault("reason", "")
            out.append(Criterion(**fields))
    return out


def _screening_part(resource: Mapping[str, Any], name: str) -> str | None:
    for ext in resource.get("extension") or ():
        if isinstance(ext, Mapping) and ext.get("url") == rs.SCREENING_EXTENSION:
            for part in ext.get("extension") or ():
                if part.get("url") == name:
                    return _shown(part) or part.get("valueDate") or part.get("valueDateTime")
    return None


@dataclass(frozen=True)
class Row:
    """One ResearchSubject as the worklist and the patient page show it."""

    subject_ref: str
    patient_id: str
    study_ref: str
    computed: str | None
    workflow: str | None
    criteria: tuple[Criterion, ...]
    as_of: str | None
    evaluated: str | None
    last_updated: str | None
    version: str | None
    patient_name: str = ""
    resource: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # The screening and enrolment log's view of the subject (service/usecases/study_funnel.py).
    log_line: LogLine | None = field(default=None, compare=False, repr=False)

    @property
    def not_met(self) -> list[Criterion]:
        return [c for c in self.criteria if c.result == "not-met"]

    @property
    def unknown(self) -> list[Criterion]:
        return [c for c in self.criteria if c.result == "unknown"]

    @property
    def by_urgency(self) -> list[Criterion]:
        """Not met first, then unknown (what is missing), then met; study order within."""
        order = {"not-met": 0, "unknown": 1}
        return sorted(self.criteria, key=lambda c: order.get(c.result, 2))

    @property
    def deceased(self) -> bool:
        """The last screening found the patient deceased (the engine's `deceased` result)."""
        return any(c.id == DECEASED and c.result == "not-met" for c in self.criteria)

    @property
    def next_actions(self) -> list[str]:
        """What is missing: the unknown criteria's labels, manual ones last (nothing for a
        deceased patient: nobody is to be asked for anything)."""
        if self.deceased:
            return []
        todo = sorted(self.unknown, key=lambda c: c.kind == "manual")
        return [c.label for c in todo]

    @property
    def sledai_lower_bound(self) -> int | None:
        for c in self.criteria:
            if c.id == "sledai-2k" and c.result == "unknown":
                found = _LOWER_BOUND.search(c.reason)
                return int(found.group(1)) if found else None
        return None

    @property
    def flag_on_study_ineligible(self) -> bool:
        """Computed ineligible while a person has the patient on study: someone must look."""
        return self.computed == "ineligible" and (self.workflow or "").startswith("on-study")

    def closeness(self) -> tuple[int, int, int, str]:
        """Sort key: eligible first, then fewest open criteria, higher SLEDAI lower bound."""
        ranks = {"eligible": 0, "potential-candidate": 1, "ineligible": 2}
        rank = ranks.get(self.computed or "", 3)
        open_count = len(self.not_met) if rank == 2 else len(self.unknown)
        return (rank, open_count, -(self.sledai_lower_bound or 0), self.patient_id)


def deceased_date(patient: Mapping[str, Any] | None) -> str | None:
    """The date of death (as recorded, at most a day) when the Patient resource gives one."""
    when = (patient or {}).get("deceasedDateTime")
    return when.strip()[:10] if isinstance(when, str) and when.strip() else None


def is_deceased(patient: Mapping[str, Any] | None) -> bool:
    """The Patient resource says the patient died (`deceasedBoolean` or a date of death)."""
    return (patient or {}).get("deceasedBoolean") is True or deceased_date(patient) is not None


def patient_name(patient: Mapping[str, Any] | None) -> str:
    """'Given Family' of the official (else first) name, or ''."""
    names = [n for n in (patient or {}).get("name") or () if isinstance(n, Mapping)]
    if not names:
        return ""
    name = next((n for n in names if n.get("use") == "official"), names[0])
    if name.get("text"):
        return str(name["text"])
    given = " ".join(str(g) for g in name.get("given") or ())
    return f"{given} {name.get('family') or ''}".strip()


def row_of(resource: Mapping[str, Any], patients: Mapping[str, Mapping[str, Any]]) -> Row | None:
    """The Row of a stored ResearchSubject (None when it is not one of ours)."""
    individual = (resource.get("individual") or {}).get("reference") or ""
    if not individual.startswith("Patient/"):
        return None
    pid = individual.split("/", 1)[1]
    meta = resource.get("meta") or {}
    return Row(
        subject_ref=f"ResearchSubject/{resource.get('id')}",
        patient_id=pid,
        study_ref=(resource.get("study") or {}).get("reference") or "",
        computed=rs.computed_status(resource),
        workflow=rs.workflow_status(resource),
        criteria=tuple(criteria_of(resource)),
        as_of=_screening_part(resource, "asOf"),
        evaluated=_screening_part(resource, "evaluated"),
        last_updated=meta.get("lastUpdated"),
        version=meta.get("versionId"),
        patient_name=patient_name(patients.get(pid)),
        resource=resource,
    )


def study_key_of(resource: Mapping[str, Any]) -> str | None:
    """The study key in our identifier value '{study-key}/{patient-id}'."""
    for ident in resource.get("identifier") or ():
        if isinstance(ident, Mapping) and ident.get("system") == rs.RESEARCH_SUBJECT_SYSTEM:
            return str(ident.get("value") or "").split("/", 1)[0] or None
    return None
