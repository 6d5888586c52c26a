"""What the patient page shows: the Patient, its stored ResearchSubjects, the evidence they
cite, and the decisions people recorded (confirmations, consents, scores)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from service.fhir.confirmations import (
    CONSENT_POLICY_PREFIX,
    CRITERION_SYSTEM,
    SCORE_SYSTEM,
    written_by_service,
)
from service.fhir.queries import batch_bundle
from service.mappings.studies import manual_parts
from service.usecases.screener import ScreeningService


@dataclass(frozen=True)
class Decision:
    """One recorded confirmation, consent or score, as the page lists it."""

    ref: str
    what: str  # the criterion id, "consent", or the score code
    answer: str
    date: str
    who: str
    study: str
    status: str | None
    undone: bool
    ours: bool  # recorded through this service: only these can be undone here
    note: str


def read_patient(svc: ScreeningService, patient_id: str) -> dict[str, Any]:
    """The Patient resource (FhirNotFound when the server has none)."""
    return svc.client().read("Patient", patient_id)


def stored_subjects(
    svc: ScreeningService, patient_id: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The patient's stored ResearchSubjects and the Patient (when the search included it)."""
    resources = list(svc.client().search("ResearchSubject", [
        ("patient", f"Patient/{patient_id}"), ("_include", "ResearchSubject:individual")]))
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
    return [r for r in resources if r.get("resourceType") == "ResearchSubject"], patient


def evidence(
    svc: ScreeningService, refs: Iterable[str], limit: int
) -> dict[str, Mapping[str, Any] | None]:
    """ref -> the cited resource (None when missing or of another type), in one batch."""
    wanted = [r for r in dict.fromkeys(refs) if r.count("/") == 1][:limit]
    if not wanted:
        return {}
    answer = svc.client().batch(batch_bundle(wanted))
    out: dict[str, Mapping[str, Any] | None] = {}
    for ref, entry in zip(wanted, answer.get("entry") or [], strict=False):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        ok = isinstance(resource, Mapping) and resource.get("resourceType") == ref.split("/")[0]
        out[ref] = resource if ok else None
    return out


def decisions(svc: ScreeningService, patient_id: str) -> list[Decision]:
    """Confirmations, consents and scores recorded for the patient: newest first, undone last."""
    client = svc.client()
    manual = sorted({p.id for s in svc.mappings.studies.values()
                     for c in s.criteria for p in manual_parts(c)})
    codes = ",".join([f"{CRITERION_SYSTEM}|{m}" for m in manual]
                     + [f"{SCORE_SYSTEM}|sledai-2k", f"{SCORE_SYSTEM}|eular-acr-2019"])
    found = list(client.search("Observation", [("subject", f"Patient/{patient_id}"),
                                               ("code", codes)]))
    found += list(client.search("Consent", [("patient", f"Patient/{patient_id}")]))
    items = [_decision(r) for r in found]
    items.sort(key=lambda i: i.date, reverse=True)
    items.sort(key=lambda i: i.undone)  # stable: undone ones last, newest first
    return items


def _decision(r: Mapping[str, Any]) -> Decision:
    who = ", ".join(str(p.get("display") or (p.get("identifier") or {}).get("value") or "")
                    for p in r.get("performer") or () if isinstance(p, Mapping))
    coding = next(iter((r.get("code") or {}).get("coding") or [{}]))
    if r.get("resourceType") == "Consent":
        policies = [str(p.get("uri") or "") for p in r.get("policy") or ()]
        study = next((p.removeprefix(CONSENT_POLICY_PREFIX) for p in policies
                      if p.startswith(CONSENT_POLICY_PREFIX)), "")
        what, answer = "consent", {"active": "signed", "rejected": "refused"}.get(
            str(r.get("status")), str(r.get("status")))
    else:
        study = ", ".join(str(f.get("display") or f.get("reference"))
                          for f in r.get("focus") or ())
        what = str(coding.get("code") or "")
        value = r.get("valueBoolean", r.get("valueInteger"))
        answer = {True: "met", False: "not met"}.get(value, str(value)) \
            if isinstance(value, bool) else f"score {value}"
    return Decision(
        ref=f"{r['resourceType']}/{r.get('id')}", what=what, answer=answer,
        date=str(r.get("effectiveDateTime") or r.get("dateTime") or "")[:10],
        who=who or "not recorded", study=study, status=r.get("status"),
        undone=r.get("status") == "entered-in-error",
        # Only what this service wrote can be undone here; the hospital's own are read-only.
        ours=written_by_service(r),
        note="; ".join(str(n.get("text")) for n in r.get("note") or ()),
    )


def last_person_change(svc: ScreeningService, subject_ref: str) -> tuple[str, str] | None:
    """(who, when) of the newest Provenance on a ResearchSubject, if any."""
    found = svc.client().search("Provenance", [("target", subject_ref)])
    newest = max((p for p in found if p.get("resourceType") == "Provenance"),
                 key=lambda p: str(p.get("recorded") or ""), default=None)
    if newest is None:
        return None
    agents = [a.get("who") or {} for a in newest.get("agent") or () if isinstance(a, Mapping)]
    who = ", ".join(str(w.get("display") or (w.get("identifier") or {}).get("value") or "")
                    for w in agents if isinstance(w, Mapping)) or "someone"
    return who, str(newest.get("recorded") or "")[:16].replace("T", " ")
