"""FHIR R4 AuditEvents of the access audit, in the IHE Basic Audit Log Patterns (BALP) shapes.

One access-audit entry (service.usecases.access_audit) becomes one AuditEvent: a page showing
one patient is a PatientRead, a list or an export a PatientQuery, a confirmation a Create and
a workflow change or undo an Update. The entry's user id, time, outcome, request id and
patient ids are carried; never a patient's name (docs/deployment.md "Access audit").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.fhir.api import FhirApi

BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
BALP_ENTITY = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
USER_SYSTEM = "urn:trial-eligibility:user"
SERVICE = "trial-eligibility"

# pattern -> (profile, restful interaction, AuditEvent.action)
PATTERNS: dict[str, tuple[str, str, str]] = {
    "read": ("PatientRead", "read", "R"),
    "query": ("PatientQuery", "search-type", "E"),
    "create": ("PatientCreate", "create", "C"),
    "update": ("PatientUpdate", "update", "U"),
}
# The entry's outcome -> AuditEvent.outcome (0 success, 4 minor failure, 8 serious failure).
OUTCOMES = {"success": "0", "denied": "4", "failure": "8"}


def audit_event(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The AuditEvent of one access-audit entry (its `pattern` picks the BALP shape)."""
    profile, interaction, action = PATTERNS[str(entry["pattern"])]
    user = entry.get("user")
    agents: list[dict[str, Any]] = [{
        "type": {"coding": [{"system": PARTICIPATION, "code": "IRCP",
                             "display": "information recipient"}]},
        "who": ({"identifier": {"system": USER_SYSTEM, "value": str(user)}} if user
                else {"display": "not signed in"}),
        "requestor": True,
        **({"network": {"address": str(entry["address"]), "type": "2"}}
           if entry.get("address") else {}),
    }, {
        "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                             "code": "110153", "display": "Source Role ID"}]},
        "who": {"display": SERVICE},
        "requestor": False,
    }]
    entities: list[dict[str, Any]] = [{
        "what": {"reference": f"Patient/{pid}"},
        "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
    } for pid in _patients(entry)]
    if entry.get("request_id"):
        entities.append({
            "what": {"identifier": {"value": str(entry["request_id"])}},
            "type": {"system": BALP_ENTITY, "code": "XrequestId"},
        })
    detail = [{"type": "action", "valueString": str(entry["action"])}]
    if entry.get("study"):
        detail.append({"type": "study", "valueString": str(entry["study"])})
    entities.append({
        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": OBJECT_ROLE, "code": "24" if action == "E" else "4",
                 "display": "Query" if action == "E" else "Domain Resource"},
        "description": str(entry.get("path") or ""),
        "detail": detail,
    })
    return {
        "resourceType": "AuditEvent",
        "meta": {"profile": [BALP + profile]},
        "type": {"system": AUDIT_TYPE, "code": "rest", "display": "Restful Operation"},
        "subtype": [{"system": INTERACTION, "code": interaction, "display": interaction}],
        "action": action,
        "recorded": str(entry["time"]),
        "outcome": OUTCOMES.get(str(entry.get("outcome")), "8"),
        "agent": agents,
        "source": {"observer": {"display": SERVICE},
                   "type": [{"system": SOURCE_TYPE, "code": "4",
                             "display": "Application Server"}]},
        "entity": entities,
    }


def _patients(entry: Mapping[str, Any]) -> list[str]:
    return [str(p) for p in entry.get("patients") or ()]


def write_audit_events(client: FhirApi, entries: Sequence[Mapping[str, Any]]) -> list[bool]:
    """POST the entries' AuditEvents as one batch; whether each was stored."""
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": audit_event(e), "request": {"method": "POST", "url": "AuditEvent"}}
        for e in entries]}
    answer = client.batch(bundle)
    stored = []
    for item in (answer.get("entry") or [])[: len(entries)]:
        status = str(((item or {}).get("response") or {}).get("status") or "")
        stored.append(status[:1] == "2")
    return stored + [False] * (len(entries) - len(stored))
