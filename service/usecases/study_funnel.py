"""A study's funnel and its screening and enrolment log, read from its ResearchSubjects.

Stages (docs/coordinator-funnel.md): screened -> candidate -> eligible -> approached
(`screening`) -> consented -> on study. A patient counts at every stage up to the furthest one
reached, read from the current statuses, the consent criterion (for a patient eligible or
approached whom the record does not show ineligible now) and the R5 progress history (so a
patient withdrawn after consent still counts as approached and consented). Those who left
(`withdrawn`, `not-registered`, or computed `ineligible` with no workflow status) are counted
by the stage they reached and their reason: the person's reason from the history, else the
criteria not met.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from service.fhir import progress
from service.fhir import research_subject as rs
from service.fhir.queries import batch_bundle
from service.usecases.screener import ScreeningService

STAGES = ("screened", "candidate", "eligible", "approached", "consented", "on study")
# The stage each state shows a patient reached (index into STAGES).
_REACHED = {
    "potential-candidate": 1, "eligible": 2, "screening": 3, "pending-on-study": 4,
    "on-study": 5, "on-study-intervention": 5, "on-study-observation": 5, "follow-up": 5,
    "off-study": 5,
}  # fmt: skip
EXITS = frozenset({"withdrawn", "not-registered"})
_ENROLLED = frozenset({"on-study", "on-study-intervention", "on-study-observation"})


def _criteria(resource: Mapping[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(id, result, evidence references) of each criterion extension."""
    out = []
    for ext in resource.get("extension") or ():
        if not (isinstance(ext, Mapping) and ext.get("url") == rs.CRITERION_EXTENSION):
            continue
        cid = result = ""
        refs: list[str] = []
        for part in ext.get("extension") or ():
            if not isinstance(part, Mapping):
                continue
            if part.get("url") == "id":
                cid = str(part.get("valueCode") or "")
            elif part.get("url") == "result":
                result = str(part.get("valueCode") or "")
            elif part.get("url") == "evidence":
                refs.append(str((part.get("valueReference") or {}).get("reference") or ""))
        out.append((cid, result, refs))
    return out


@dataclass(frozen=True)
class LogLine:
    """One patient in the screening and enrolment log."""

    patient_id: str
    computed: str
    workflow: str
    reached: int
    left: bool
    reason: str
    date_screened: str
    eligible: bool
    consent_refs: tuple[str, ...]
    consent_date: str
    enrolment_date: str
    history: tuple[progress.Progress, ...] = field(default=(), compare=False)


def log_line(resource: Mapping[str, Any]) -> LogLine:
    """What the log says of one ResearchSubject."""
    computed = rs.computed_status(resource) or ""
    workflow = rs.workflow_status(resource) or ""
    history = progress.history(resource)
    criteria = _criteria(resource)
    not_met = [cid for cid, result, _ in criteria if result == "not-met"]
    consent = [(result, refs) for cid, result, refs in criteria if cid == "consent"]
    consented = any(result == "met" for result, _ in consent)
    states = [computed, workflow] + [h.state for h in history]
    reached = max(_REACHED.get(s, 0) for s in states)
    # A signed consent places an eligible (or approached) patient at `consented`. It does not
    # lift a potential candidate past eligibility (a consent signed before the screening
    # tests: the funnel would count them eligible while the screening says not yet), nor
    # someone the record now shows ineligible: they count where the statuses place them.
    if consented and computed != "ineligible" and reached >= STAGES.index("eligible"):
        reached = max(reached, STAGES.index("consented"))
    left = workflow in EXITS or (computed == "ineligible" and not workflow)
    reason = ""
    person = [h for h in history if not h.by_screening and h.reason is not None]
    if workflow in EXITS and person and person[-1].state == workflow and person[-1].reason:
        reason = person[-1].reason.label
    elif workflow in EXITS:
        reason = f"{workflow} (no reason recorded)"
    elif computed == "ineligible":
        reason = "Not eligible: " + ", ".join(not_met) if not_met else "Not eligible"
    screened = [h.start for h in history if h.by_screening]
    evaluated = ""
    for ext in resource.get("extension") or ():
        if isinstance(ext, Mapping) and ext.get("url") == rs.SCREENING_EXTENSION:
            evaluated = next((str(p.get("valueDateTime")) for p in ext.get("extension") or ()
                              if isinstance(p, Mapping) and p.get("url") == "evaluated"), "")
    pending = [h.start for h in history if h.state == "pending-on-study"]
    enrolled = [h.start for h in history if h.state in _ENROLLED]
    return LogLine(
        patient_id=str((resource.get("individual") or {}).get("reference") or "").split("/")[-1],
        computed=computed, workflow=workflow, reached=reached, left=left, reason=reason,
        date_screened=(screened[0] if screened else evaluated)[:10],
        eligible=computed == "eligible",
        consent_refs=tuple(r for result, refs in consent if result == "met" for r in refs
                           if r.startswith("Consent/")),
        consent_date=(pending[0][:10] if pending else ""),
        enrolment_date=(enrolled[0][:10] if enrolled else ""),
        history=tuple(history),
    )


@dataclass(frozen=True)
class Funnel:
    """How many reached each stage, and who left where and why."""

    stages: tuple[tuple[str, int], ...]
    left: tuple[tuple[str, str, int], ...]  # (stage reached, reason, patients)


def funnel(lines: Iterable[LogLine]) -> Funnel:
    """Count the stages reached and the reasons of those who left."""
    lines = list(lines)
    counts = [(name, sum(1 for line in lines if line.reached >= i))
              for i, name in enumerate(STAGES)]
    left = Counter((STAGES[line.reached], line.reason) for line in lines if line.left)
    ordered = sorted(left.items(), key=lambda kv: (-STAGES.index(kv[0][0]), -kv[1], kv[0][1]))
    return Funnel(tuple(counts), tuple((stage, why, n) for (stage, why), n in ordered))


def with_consent_dates(lines: Sequence[LogLine], consents: Mapping[str, Mapping[str, Any]]
                       ) -> list[LogLine]:
    """The lines with the date of their signed Consent (read by the caller), when known."""
    out = []
    for line in lines:
        dates = sorted(str(consents[r].get("dateTime") or "")[:10] for r in line.consent_refs
                       if r in consents and consents[r].get("dateTime"))
        if dates:
            line = replace(line, consent_date=dates[0])
        out.append(line)
    return out


MAX_CONSENTS = 200  # Consents read in one batch


def read_consents(screener: ScreeningService, lines: Sequence[LogLine]
                  ) -> dict[str, Mapping[str, Any]]:
    """The signed Consents the lines cite, read in batches (for their dates)."""
    refs = list(dict.fromkeys(r for line in lines for r in line.consent_refs))
    out: dict[str, Mapping[str, Any]] = {}
    client = screener.client()
    for start in range(0, len(refs), MAX_CONSENTS):
        chunk = refs[start:start + MAX_CONSENTS]
        answer = client.batch(batch_bundle(chunk))
        for ref, entry in zip(chunk, answer.get("entry") or [], strict=False):
            resource = entry.get("resource") if isinstance(entry, Mapping) else None
            if isinstance(resource, Mapping) and resource.get("resourceType") == "Consent":
                out[ref] = resource
    return out
