"""What a person records through the pages: confirmations, undo, workflow status, scores.

Each write is one transaction holding the resource and a Provenance naming the user
(docs/write-back.md "Recording what a person confirms"); the resources are built here (pure)
and sent by the caller's FHIR client.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from service.fhir.locations import location_parts
from service.fhir.progress import Reason, progress_entry

CRITERION_SYSTEM = "urn:trial-eligibility:criterion"
USER_SYSTEM = "urn:trial-eligibility:user"
SCORE_SYSTEM = "urn:trial-eligibility:score"
SLEDAI_DESCRIPTOR_SYSTEM = "urn:trial-eligibility:sledai-2k-descriptor"
EULAR_ACR_ITEM_SYSTEM = "urn:trial-eligibility:eular-acr-2019-item"
EULAR_ACR_CODE = "eular-acr-2019"
EULAR_ACR_ENTRY = "entry-ana"
NOTE_EXTENSION = "urn:trial-eligibility:extension:note"
CONSENT_POLICY_PREFIX = "urn:trial-eligibility:study:"
_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
MAX_NOTE = 2000


class ConfirmationError(ValueError):
    """A confirmation that cannot be recorded as asked (nothing is written)."""


@dataclass(frozen=True)
class Author:
    """Who records: the signed-in user's stable name and display name."""

    name: str
    display: str

    def reference(self) -> dict[str, Any]:
        """A Reference by identifier (system urn:trial-eligibility:user)."""
        return {"identifier": {"system": USER_SYSTEM, "value": self.name}, "display": self.display}


def _uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def provenance(target: str, author: Author, recorded: datetime, activity: str) -> dict[str, Any]:
    """A Provenance: `author` did `activity` (CREATE, UPDATE, NULLIFY) to `target` at `recorded`."""
    if recorded.tzinfo is None:
        raise ConfirmationError("recorded must carry a time zone")
    return {
        "resourceType": "Provenance",
        "target": [{"reference": target}],
        "recorded": recorded.isoformat(timespec="seconds"),
        "activity": {"coding": [{"system": _OPERATION, "code": activity}]},
        "agent": [
            {
                "type": {"coding": [{"system": _PARTICIPANT, "code": "author"}]},
                "who": author.reference(),
            }
        ],
    }


def _transaction(
    resource: Mapping[str, Any], request: Mapping[str, Any], prov: Mapping[str, Any], full_url: str
) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": full_url, "resource": dict(resource), "request": dict(request)},
            {"fullUrl": _uuid(), "resource": dict(prov),
             "request": {"method": "POST", "url": "Provenance"}},
        ],
    }


def confirmation_observation(
    *,
    patient_id: str,
    criterion_id: str,
    criterion_text: str,
    met: bool,
    when: date,
    author: Author,
    note: str = "",
    study: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The Observation of a manual criterion; `study` = (ResearchStudy ref, title) if per study."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {
            "coding": [{"system": CRITERION_SYSTEM, "code": criterion_id,
                        "display": criterion_text[:250]}],
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when.isoformat(),
        "performer": [author.reference()],
        "valueBoolean": met,
    }
    if study is not None:
        resource["focus"] = [{"reference": study[0], "display": study[1]}]
    if note.strip():
        resource["note"] = [{"authorString": author.display, "text": note.strip()[:MAX_NOTE]}]
    return resource


def consent_resource(
    *, patient_id: str, study_key: str, signed: bool, when: date, author: Author, note: str = ""
) -> dict[str, Any]:
    """A research Consent for one study: active (signed) or rejected (refused)."""
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active" if signed else "rejected",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0",
                                  "display": "Patient Consent"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": when.isoformat(),
        # docs/write-back.md: every confirmation names who recorded it in `performer`.
        "performer": [author.reference()],
        "policy": [{"uri": f"{CONSENT_POLICY_PREFIX}{study_key}"}],
    }
    if note.strip():
        resource["extension"] = [{"url": NOTE_EXTENSION, "valueString": note.strip()[:MAX_NOTE]}]
    return resource


def create_with_provenance(
    resource: Mapping[str, Any], author: Author, recorded: datetime
) -> dict[str, Any]:
    """The transaction creating `resource` with its Provenance."""
    full_url = _uuid()
    prov = provenance(full_url, author, recorded, "CREATE")
    request = {"method": "POST", "url": str(resource["resourceType"])}
    return _transaction(resource, request, prov, full_url)


def _update(
    resource: Mapping[str, Any], author: Author, recorded: datetime, activity: str
) -> dict[str, Any]:
    kind, rid = resource["resourceType"], resource.get("id")
    if not rid:
        raise ConfirmationError("the resource to update has no id")
    ref = f"{kind}/{rid}"
    request: dict[str, Any] = {"method": "PUT", "url": ref}
    version = (resource.get("meta") or {}).get("versionId")
    if version:
        # Optimistic locking: a change made meanwhile by someone else is not overwritten.
        request["ifMatch"] = f'W/"{version}"'
    body = {k: v for k, v in resource.items() if k != "meta"}
    return _transaction(body, request, provenance(ref, author, recorded, activity), ref)


def entered_in_error(
    resource: Mapping[str, Any], author: Author, recorded: datetime
) -> dict[str, Any]:
    """Undo: the transaction marking a confirmation entered-in-error (nothing is deleted)."""
    if resource.get("resourceType") not in ("Observation", "Consent"):
        raise ConfirmationError("only Observations and Consents are undone")
    if resource.get("status") == "entered-in-error":
        raise ConfirmationError("this confirmation was already undone")
    return _update({**resource, "status": "entered-in-error"}, author, recorded, "NULLIFY")


def workflow_update(
    subject: Mapping[str, Any], status: str, author: Author, recorded: datetime,
    reason: Reason | None = None,
) -> dict[str, Any]:
    """The transaction setting a ResearchSubject's workflow status (computed one untouched),
    the change appended to its history as an R5 progress entry with the reason."""
    if subject.get("resourceType") != "ResearchSubject":
        raise ConfirmationError("not a ResearchSubject")
    extensions = [*(subject.get("extension") or ()), progress_entry(status, recorded, reason)]
    return _update({**subject, "status": status, "extension": extensions}, author, recorded,
                   "UPDATE")


def _score_observation(
    *, code: str, display: str, patient_id: str, when: date, author: Author, total: int,
    item_system: str, scored: Sequence[tuple[str, str, int, bool]], derived_from: Sequence[str],
    note: str, leading: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A worksheet's score Observation: the total, one component per item (its points or 0),
    the evidence as `derivedFrom`, the person as performer, their note."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey"}]}],
        "code": {"coding": [{"system": SCORE_SYSTEM, "code": code, "display": display}],
                 "text": display},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when.isoformat(),
        "performer": [author.reference()],
        "valueInteger": total,
        "derivedFrom": [{"reference": ref} for ref in dict.fromkeys(derived_from)],
        "component": [*leading] + [
            {
                "code": {"coding": [{"system": item_system, "code": key, "display": label}]},
                "valueInteger": weight if present else 0,
            }
            for key, label, weight, present in scored
        ],
    }
    if not resource["derivedFrom"]:
        del resource["derivedFrom"]
    if note.strip():
        resource["note"] = [{"authorString": author.display, "text": note.strip()[:MAX_NOTE]}]
    return resource


def sledai_observation(
    *,
    patient_id: str,
    when: date,
    author: Author,
    scored: Sequence[tuple[str, str, int, bool]],
    derived_from: Sequence[str],
    note: str = "",
) -> dict[str, Any]:
    """A SLEDAI-2K score: `scored` = (key, label, weight, present) for all 24 descriptors."""
    total = sum(weight for _, _, weight, present in scored if present)
    return _score_observation(
        code="sledai-2k", display="SLEDAI-2K", patient_id=patient_id, when=when, author=author,
        total=total, item_system=SLEDAI_DESCRIPTOR_SYSTEM, scored=scored,
        derived_from=derived_from, note=note)


def written_by_service(resource: Mapping[str, Any]) -> bool:
    """Whether a confirmation, consent or score was recorded through this service.

    Ours carry a performer identified in `urn:trial-eligibility:user` AND our coding (an
    Observation coded in our criterion or score system) or policy (a Consent with our study
    policy URI). The hospital's own Consents and Observations are not ours: they are shown
    read-only and never undone (issue 22, finding 1).
    """
    performers = resource.get("performer") or ()
    by_user = any(
        isinstance(p, Mapping) and isinstance(p.get("identifier"), Mapping)
        and p["identifier"].get("system") == USER_SYSTEM and p["identifier"].get("value")
        for p in (performers if isinstance(performers, list) else ())
    )
    if not by_user:
        return False
    kind = resource.get("resourceType")
    if kind == "Consent":
        policies = resource.get("policy") or ()
        return any(isinstance(p, Mapping) and str(p.get("uri") or "").startswith(
            CONSENT_POLICY_PREFIX) for p in (policies if isinstance(policies, list) else ()))
    if kind == "Observation":
        codings = (resource.get("code") or {}).get("coding") or ()
        return any(isinstance(c, Mapping) and c.get("system") in (CRITERION_SYSTEM, SCORE_SYSTEM)
                   for c in (codings if isinstance(codings, list) else ()))
    return False


def classification_observation(
    *,
    patient_id: str,
    when: date,
    author: Author,
    entry: bool,
    total: int,
    scored: Sequence[tuple[str, str, int, bool]],
    derived_from: Sequence[str],
    note: str = "",
) -> dict[str, Any]:
    """A 2019 EULAR/ACR classification (docs/coordinator-funnel.md): `valueInteger` the total
    (highest item per domain), the entry criterion as a `valueBoolean` component, and one
    component per item, `scored` = (key, label, weight, present), valueInteger its points or 0."""
    entry_component = {
        "code": {"coding": [{"system": EULAR_ACR_ITEM_SYSTEM, "code": EULAR_ACR_ENTRY,
                             "display": "ANA at a titre of at least 1:80 (ever)"}]},
        "valueBoolean": entry}
    return _score_observation(
        code=EULAR_ACR_CODE, display="2019 EULAR/ACR classification criteria for SLE",
        patient_id=patient_id, when=when, author=author, total=total,
        item_system=EULAR_ACR_ITEM_SYSTEM, scored=scored, derived_from=derived_from, note=note,
        leading=[entry_component])


def created_reference(answer: Mapping[str, Any]) -> str:
    """'Type/id' of the first entry of a transaction-response."""
    entries = answer.get("entry") or []
    location = str(((entries[0] if entries else {}).get("response") or {}).get("location") or "")
    found = location_parts(location)
    if found is None:
        raise ConfirmationError("the FHIR server did not say where it stored the resource")
    return f"{found[0]}/{found[1]}"
