"""Write-back resources (pure): ResearchSubject per (patient, study), its transaction Bundle."""

from __future__ import annotations

import html
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from service.engine.results import CriterionResult, StudyResult, Value
from service.fhir import resource_schema
from service.fhir.locations import location_parts, stored_reference
from service.fhir.progress import screened_entry

RESEARCH_SUBJECT_SYSTEM = "urn:trial-eligibility:research-subject"
STUDY_SYSTEM = "urn:trial-eligibility:study"
REGISTRY_SYSTEM = "https://clinicaltrials.gov"
# Extension on ResearchSubject: when and as of which date the stored result was produced.
SCREENING_EXTENSION = "urn:trial-eligibility:extension:screening"
# Extension on ResearchSubject, one per criterion in study order.
CRITERION_EXTENSION = "urn:trial-eligibility:extension:criterion"
# Sub-extensions of the screening extension that describe *when* a result was computed, not
# *what* it is: a re-screen that only changes these is not a change (no new version).
_VOLATILE_SCREENING_PARTS = frozenset({"evaluated", "asOf"})
# R4 ResearchSubject.status (required binding); the model library does not enforce it.
R4_RESEARCH_SUBJECT_STATUSES = frozenset(
    {
        "candidate", "eligible", "follow-up", "ineligible", "not-registered", "off-study",
        "on-study", "on-study-intervention", "on-study-observation", "pending-on-study",
        "potential-candidate", "screening", "withdrawn",
    }
)  # fmt: skip
# The statuses the service computes (docs/decisions.md). Any other R4 status on a stored
# ResearchSubject is a person's workflow decision (docs/write-back.md) and is never overwritten.
COMPUTED_STATUSES = frozenset({"eligible", "potential-candidate", "ineligible"})
WORKFLOW_STATUSES = (
    "screening", "pending-on-study", "on-study", "on-study-intervention",
    "on-study-observation", "follow-up", "off-study", "withdrawn", "not-registered",
)  # fmt: skip
_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, RESEARCH_SUBJECT_SYSTEM)


class WriteBackError(ValueError):
    """A write-back resource or server answer is not what it must be (nothing is written)."""


def research_subject_identifier_value(study_key: str, patient_id: str) -> str:
    """Identifier value of the ResearchSubject of (study, patient): '{study-key}/{patient-id}'."""
    return f"{study_key}/{patient_id}"


def conditional_url(study_key: str, patient_id: str) -> str:
    """Conditional update URL finding the ResearchSubject by its identifier."""
    token = f"{RESEARCH_SUBJECT_SYSTEM}|{research_subject_identifier_value(study_key, patient_id)}"
    return "ResearchSubject?identifier=" + quote(token, safe=":|/")


def has_identifier(resource: Mapping[str, Any], system: str, value: str) -> bool:
    """True when the resource carries identifier system|value."""
    return any(
        isinstance(i, Mapping) and i.get("system") == system and i.get("value") == value
        for i in resource.get("identifier") or ()
    )


def workflow_status(resource: Mapping[str, Any] | None) -> str | None:
    """The workflow status a person set on a stored ResearchSubject, else None."""
    status = (resource or {}).get("status")
    if isinstance(status, str) and status in R4_RESEARCH_SUBJECT_STATUSES:
        return None if status in COMPUTED_STATUSES else status
    return None


def computed_status(resource: Mapping[str, Any]) -> str | None:
    """The computed status of a stored ResearchSubject (screening extension, else status)."""
    for ext in resource.get("extension") or ():
        if isinstance(ext, Mapping) and ext.get("url") == SCREENING_EXTENSION:
            for part in ext.get("extension") or ():
                if isinstance(part, Mapping) and part.get("url") == "status":
                    code = part.get("valueCode")
                    return code if code in COMPUTED_STATUSES else None
    # Written before the status sub-extension existed: status was always the computed one.
    status = resource.get("status")
    return status if status in COMPUTED_STATUSES else None


def _value_part(name: str, value: Value) -> dict[str, Any]:
    raw = value.value
    if isinstance(raw, bool):
        return {"url": name, "valueBoolean": raw}
    if isinstance(raw, str):
        text = f"{raw} {value.unit}" if value.unit else raw
        return {"url": name, "valueString": text}
    number = value.to_json()["value"]
    if value.unit is None and isinstance(number, int):
        return {"url": name, "valueInteger": number}
    quantity: dict[str, Any] = {"value": number}
    if value.unit is not None:
        quantity["unit"] = value.unit
    return {"url": name, "valueQuantity": quantity}


def criterion_extension(criterion: CriterionResult) -> dict[str, Any]:
    """One criterion as a complex extension: id, kind, result, reason, value, ULN, evidence."""
    parts: list[dict[str, Any]] = [
        {"url": "id", "valueCode": criterion.id},
        {"url": "kind", "valueCode": criterion.kind},
    ]
    # inclusion | exclusion (docs/write-back.md)
    kind_of_criterion = getattr(criterion, "type", None)
    if kind_of_criterion:
        parts.append({"url": "type", "valueCode": kind_of_criterion})
    parts += [
        {"url": "result", "valueCode": criterion.result},
        {"url": "reason", "valueString": criterion.reason},
    ]
    if criterion.value is not None:
        parts.append(_value_part("value", criterion.value))
    if criterion.uln is not None:
        parts.append(_value_part("uln", criterion.uln))
        if criterion.uln_source:
            parts.append({"url": "ulnSource", "valueString": criterion.uln_source})
    parts.extend(
        {"url": "evidence", "valueReference": {"reference": ref}} for ref in criterion.evidence
    )
    return {"url": CRITERION_EXTENSION, "extension": parts}


def _narrative(study: StudyResult, as_of: date) -> dict[str, str]:
    # Human-readable copy of the extensions so any FHIR viewer shows the reasons.
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(c.id)}</td><td>{e(c.result)}</td><td>{e(c.reason)}</td></tr>"
        for c in study.criteria
    )
    div = (
        '<div xmlns="http://www.w3.org/1999/xhtml">'
        f"<p>{e(study.title)}: <b>{e(study.status)}</b> (screened as of {as_of.isoformat()})</p>"
        f"<table><tr><th>criterion</th><th>result</th><th>reason</th></tr>{rows}</table></div>"
    )
    return {"status": "generated", "div": div}


def build_research_subject(
    study: StudyResult,
    *,
    patient_id: str,
    as_of: date,
    research_study: str,
    evaluated_at: datetime,
    existing: Mapping[str, Any] | None = None,
    narrative: bool = True,
) -> dict[str, Any]:
    """The ResearchSubject for one study's result; fields others added to `existing` are kept.

    `narrative=False` leaves out `text` (it does not take part in `unchanged`); add it with
    `with_narrative` before writing.
    """
    if evaluated_at.tzinfo is None:
        raise WriteBackError("evaluated_at must carry a time zone (FHIR dateTime with seconds)")
    if not research_study.startswith("ResearchStudy/"):
        raise WriteBackError(f"study reference {research_study!r} is not ResearchStudy/<id>")
    ours = research_subject_identifier_value(study.study, patient_id)
    # A shallow copy is enough: only top-level keys are replaced, nested values are never
    # mutated (a deep copy was ~45% of a re-screen's CPU).
    resource: dict[str, Any] = dict(existing) if existing else {}
    # Server-managed and our own derived fields are rebuilt; conditional update resolves the id
    # (a create-by-update must not carry one).
    for key in ("id", "meta", "text"):
        resource.pop(key, None)
    foreign_ids = [
        i
        for i in resource.get("identifier") or ()
        if not (isinstance(i, Mapping) and i.get("system") == RESEARCH_SUBJECT_SYSTEM)
    ]
    foreign_ext = [
        x
        for x in resource.get("extension") or ()
        if not (
            isinstance(x, Mapping) and x.get("url") in (SCREENING_EXTENSION, CRITERION_EXTENSION)
        )
    ]
    if existing is None or computed_status(existing) != study.status:
        # The history (docs/coordinator-funnel.md): a change of the computed status is appended
        # as an R5 progress entry; entries already there (the screening's and people's) are kept
        # as they are.
        not_met = [c.id for c in study.criteria if c.result == "not-met"]
        foreign_ext.append(screened_entry(study.status, evaluated_at, not_met))
    screening = {
        "url": SCREENING_EXTENSION,
        "extension": [
            {"url": "status", "valueCode": study.status},
            {"url": "asOf", "valueDate": as_of.isoformat()},
            {"url": "evaluated", "valueDateTime": evaluated_at.isoformat(timespec="seconds")},
        ],
    }
    # A person's workflow status (on-study, withdrawn, ...) is data: a re-screen keeps it and
    # the computed status lives in the screening extension only (docs/write-back.md).
    status = workflow_status(existing) or study.status
    if narrative:
        resource["text"] = _narrative(study, as_of)
    resource.update(
        {
            "resourceType": "ResearchSubject",
            "extension": foreign_ext
            + [screening]
            + [criterion_extension(c) for c in study.criteria],
            "identifier": [{"system": RESEARCH_SUBJECT_SYSTEM, "value": ours}, *foreign_ids],
            "status": status,
            "study": {"reference": research_study, "display": study.title},
            "individual": {"reference": f"Patient/{patient_id}"},
        }
    )
    return resource


def with_narrative(resource: dict[str, Any], study: StudyResult, as_of: date) -> dict[str, Any]:
    """The resource with its generated narrative (built only for resources to be written)."""
    return {**resource, "text": _narrative(study, as_of)}


def comparable(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a ResearchSubject that decides whether a write changes anything."""
    # Read-only view: the screening extension is rebuilt below, nothing nested is mutated.
    out = {k: v for k, v in resource.items() if k not in ("id", "meta", "text")}
    extensions = []
    for ext in out.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == SCREENING_EXTENSION:
            ext = {
                **ext,
                "extension": [
                    p
                    for p in ext.get("extension") or ()
                    if not (isinstance(p, Mapping) and p.get("url") in _VOLATILE_SCREENING_PARTS)
                ],
            }
        extensions.append(ext)
    if "extension" in out:
        out["extension"] = extensions
    return out


def unchanged(new: Mapping[str, Any], stored: Mapping[str, Any] | None) -> bool:
    """True when writing `new` over `stored` would change nothing but the screening time."""
    return stored is not None and comparable(new) == comparable(stored)


def validate_research_subject(resource: Mapping[str, Any]) -> None:
    """Check the resource against the R4 JSON Schema of ResearchSubject before it is written.

    The compiled schema costs a small fraction of the R4B model (tests/benchmarks); a resource
    with `contained` resources (never ours; someone else's addition) gets the full model too,
    because the schema does not describe every resource type that could be contained.
    """
    status = resource.get("status")
    if not isinstance(status, str) or status not in R4_RESEARCH_SUBJECT_STATUSES:
        raise WriteBackError(f"ResearchSubject.status {status!r} is not an R4 status")
    try:
        resource_schema.research_subject_check()(resource)
    except resource_schema.SchemaError as exc:
        raise WriteBackError(f"invalid ResearchSubject built: {exc.message}") from None
    if "contained" in resource:
        validate_with_model(resource)


def validate_with_model(resource: Mapping[str, Any]) -> None:
    """Check the resource against the fhir.resources R4B model (slow: about 3 ms)."""
    from fhir.resources.R4B.researchsubject import ResearchSubject  # heavy import, only here

    try:
        ResearchSubject.model_validate(dict(resource))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        first = str(exc).splitlines()[:3]
        raise WriteBackError("invalid ResearchSubject built: " + " ".join(first)) from None


def entry_full_url(study_key: str, patient_id: str) -> str:
    """A stable urn:uuid for the transaction entry of (study, patient)."""
    name = research_subject_identifier_value(study_key, patient_id)
    return f"urn:uuid:{uuid.uuid5(_UUID_NAMESPACE, name)}"


def write_transaction(subjects: Sequence[tuple[str, str, Mapping[str, Any]]]) -> dict[str, Any]:
    """One transaction of conditional updates; `subjects` are (study key, patient id, resource)."""
    if not subjects:
        raise WriteBackError("nothing to write")
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": entry_full_url(key, pid),
                "resource": dict(resource),
                "request": {"method": "PUT", "url": conditional_url(key, pid)},
            }
            for key, pid, resource in subjects
        ],
    }


@dataclass(frozen=True)
class WrittenEntry:
    """Where one transaction entry landed: 'ResearchSubject/<id>' and created or updated."""

    reference: str
    created: bool
    version: str | None


def _status_code(status: Any) -> int | None:
    try:
        return int(str(status).split()[0])
    except (ValueError, IndexError):
        return None


def parse_write_response(response: Mapping[str, Any], expected: int) -> list[WrittenEntry]:
    """Read the transaction-response: one location per entry, in request order."""
    if response.get("resourceType") != "Bundle" or response.get("type") != "transaction-response":
        raise WriteBackError("the transaction was not answered with a transaction-response")
    entries = response.get("entry") or []
    if len(entries) != expected:
        raise WriteBackError(
            f"transaction-response has {len(entries)} entries for {expected} requests"
        )
    written = []
    for entry in entries:
        answer = entry.get("response") or {}
        code = _status_code(answer.get("status"))
        if code is None or not 200 <= code < 300:
            raise WriteBackError(f"transaction entry answered {answer.get('status')!r}")
        ref = stored_reference(entry, "ResearchSubject")
        if ref is None:
            raise WriteBackError("transaction entry has no ResearchSubject location")
        found = location_parts(answer.get("location") or "")
        version = found[2] if found is not None else None
        written.append(WrittenEntry(reference=ref, created=code == 201, version=version))
    return written


def research_study_resource(key: str, title: str, registry_id: str | None) -> dict[str, Any]:
    """A minimal ResearchStudy for a study with no seed file (found again by its key)."""
    identifiers = [{"system": STUDY_SYSTEM, "value": key}]
    if registry_id:
        identifiers.append({"system": REGISTRY_SYSTEM, "value": registry_id})
    return {
        "resourceType": "ResearchStudy",
        "identifier": identifiers,
        "title": title,
        "status": "active",
    }
