"""A patient's record indexed by concept, read straight from FHIR JSON without full validation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from service.engine.model import Mappings
from service.engine.panels import component_view

IGNORED_STATUSES = frozenset({"entered-in-error", "cancelled"})
# Observation statuses whose value may be used: a preliminary or registered result is not final.
USABLE_OBSERVATION = frozenset({"final", "amended", "corrected", "appended"})
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


class RecordError(ValueError):
    """The record cannot be evaluated (no Patient, or not FHIR R4); the message says why."""


@dataclass(frozen=True)
class FhirDate:
    """A FHIR date or dateTime reduced to a day, remembering how precise it was."""

    day: date
    precision: str  # "year" | "month" | "day"

    @property
    def latest(self) -> date:
        """The last day the (possibly partial) date can stand for."""
        if self.precision == "year":
            return date(self.day.year, 12, 31)
        if self.precision == "month":
            nxt = date(self.day.year + (self.day.month == 12), self.day.month % 12 + 1, 1)
            return date.fromordinal(nxt.toordinal() - 1)
        return self.day


def parse_date(value: Any) -> FhirDate | None:
    """Parse a FHIR date/dateTime/instant to its calendar day as written (no time zone shift)."""
    if not isinstance(value, str):
        return None
    match = _DATE.match(value.strip())
    if not match:
        return None
    year, month, day = match.groups()
    try:
        return FhirDate(
            date(int(year), int(month or 1), int(day or 1)),
            "day" if day else "month" if month else "year",
        )
    except ValueError:
        return None


def status_of(resource: dict[str, Any]) -> str | None:
    """A resource's `status` code; None when missing or malformed (e.g. a list)."""
    value = resource.get("status")
    return value if isinstance(value, str) else None


def codes_of(concept: Any) -> set[str]:
    """The codes of a CodeableConcept's codings (malformed ones skipped)."""
    return {c["code"] for c in codings(concept) if isinstance(c.get("code"), str)}


def as_list(value: Any) -> list[Any]:
    """A JSON array, or an empty list for anything else (malformed input is common)."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty dict for anything else."""
    return value if isinstance(value, dict) else {}


def codings(concept: Any) -> Iterator[dict[str, Any]]:
    """The codings of a CodeableConcept, tolerating malformed shapes."""
    if isinstance(concept, dict):
        items = concept.get("coding")
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    yield item


def concept_texts(concept: Any) -> tuple[str, ...]:
    """The free texts of a CodeableConcept (its text, then each display), lower-cased, for name
    matching. Kept apart: a name is found in one of them, never across two ("History of lupus"
    with a display "Nephritis" does not name lupus nephritis)."""
    if not isinstance(concept, dict):
        return ()
    parts = [concept.get("text")] + [c.get("display") for c in codings(concept)]
    return tuple(p.lower() for p in parts if isinstance(p, str) and p)


# A version-specific reference (`Patient/1/_history/2`, as some EHR exports write them) means
# the resource itself: the FHIR boundary accepts it for the patient, so the record must too.
_VERSION = re.compile(r"/_history/[^/]*$")


def reference_of(value: Any) -> str | None:
    """The `reference` string of a Reference, if any, without a `/_history/{v}` version."""
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str):
            return _VERSION.sub("", ref)
    return None


def ref_key(resource: dict[str, Any]) -> str:
    """`Type/id` of a resource (`Type/#n` placeholder when it has no id)."""
    rid = resource.get("id")
    return f"{resource.get('resourceType')}/{rid if isinstance(rid, str) else '?'}"


@dataclass
class Entry:
    """One indexed resource with the concepts its code belongs to and its clinical date."""

    resource: dict[str, Any]
    concepts: tuple[str, ...]
    when: FhirDate | None

    @property
    def ref(self) -> str:
        return ref_key(self.resource)


# --------------------------------------------------------------------------- version checks

def _stu3_or_r5_marker(resource: dict[str, Any]) -> str | None:
    """A human-readable reason when a resource is clearly STU3 or R5 rather than R4."""
    rtype = resource.get("resourceType")
    if rtype in ("Condition", "AllergyIntolerance"):
        for key in ("clinicalStatus", "verificationStatus"):
            if isinstance(resource.get(key), str):
                return f"{rtype}.{key} is a plain code (STU3); R4 uses a CodeableConcept"
    if rtype == "MedicationStatement":
        if "taken" in resource:
            return "MedicationStatement.taken exists only in STU3"
        if isinstance(resource.get("medication"), dict):
            return "MedicationStatement.medication is a CodeableReference (R5)"
    if rtype == "MedicationRequest" and isinstance(resource.get("medication"), dict):
        return "MedicationRequest.medication is a CodeableReference (R5)"
    if rtype == "Observation" and "context" in resource:
        return "Observation.context exists only in STU3"
    if rtype in ("Procedure",) and "occurrenceDateTime" in resource:
        return "Procedure.occurrence[x] exists only in R5"
    if rtype == "ResearchSubject" and "progress" in resource:
        return "ResearchSubject.progress exists only in R5"
    return None


def check_r4(resources: Iterable[dict[str, Any]]) -> None:
    """Raise RecordError when any resource is recognisably STU3 or R5."""
    for resource in resources:
        reason = _stu3_or_r5_marker(resource)
        if reason:
            raise RecordError(
                f"{ref_key(resource)} is not FHIR R4 ({reason}); this service reads R4 only"
            )


# --------------------------------------------------------------------------- the record

@dataclass
class PatientRecord:
    """A patient's resources, filtered to that patient and indexed by concept."""

    patient: dict[str, Any]
    patient_id: str
    mappings: Mappings
    by_concept: dict[str, list[Entry]] = field(default_factory=dict)
    by_type: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    by_ref: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Observation ref -> date of the DiagnosticReport that lists it (for undated results).
    report_dates: dict[str, FhirDate] = field(default_factory=dict)

    @property
    def gender(self) -> str | None:
        value = self.patient.get("gender")
        return value if isinstance(value, str) else None

    @property
    def birth_date(self) -> FhirDate | None:
        return parse_date(self.patient.get("birthDate"))

    def entries(self, concept: str) -> list[Entry]:
        """Indexed entries of a concept, newest first (undated last)."""
        return self.by_concept.get(concept, [])

    def resolve(self, reference: str | None, container: dict[str, Any] | None = None
                ) -> dict[str, Any] | None:
        """Resolve a reference within the record (contained `#id` in the container first)."""
        if not reference:
            return None
        if reference.startswith("#") and container is not None:
            for item in as_list(container.get("contained")):
                if isinstance(item, dict) and item.get("id") == reference[1:]:
                    return item
            return None
        found = self.by_ref.get(reference)
        if found is None and "/" in reference:
            # Absolute URL: keep the last Type/id.
            tail = "/".join(reference.rstrip("/").split("/")[-2:])
            found = self.by_ref.get(tail)
        return found


SUBJECT_KEYS = ("subject", "patient", "individual", "beneficiary")


def _subject(resource: dict[str, Any]) -> str | None:
    for key in SUBJECT_KEYS:
        ref = reference_of(resource.get(key))
        if ref:
            return ref
    return None


def clinical_date(resource: dict[str, Any]) -> FhirDate | None:
    """The date a resource speaks for (effective, performed, onset, authored, issued...)."""
    for key in ("effectiveDateTime", "effectiveInstant", "performedDateTime",
                "onsetDateTime", "occurrenceDateTime", "dateTime", "authoredOn",
                "recordedDate", "dateAsserted", "date", "issued"):
        found = parse_date(resource.get(key))
        if found:
            return found
    for key in ("effectivePeriod", "performedPeriod", "onsetPeriod"):
        period = resource.get(key)
        if isinstance(period, dict):
            found = parse_date(period.get("end")) or parse_date(period.get("start"))
            if found:
                return found
    return None


def _observation_date(resource: dict[str, Any]) -> FhirDate | None:
    """effective[x], a period by its start (docs/decisions.md "Records as hospitals send them")."""
    for key in ("effectiveDateTime", "effectiveInstant"):
        found = parse_date(resource.get(key))
        if found:
            return found
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        found = parse_date(period.get("start")) or parse_date(period.get("end"))
        if found:
            return found
    return None


def build_record(
    resources: Iterable[dict[str, Any]],
    mappings: Mappings,
    patient_id: str | None = None,
    aliases: Iterable[str] = (),
) -> PatientRecord:
    """Index a patient's resources; other patients' resources are left out.

    `aliases` are further references that mean this patient (e.g. a Bundle's urn:uuid).
    """
    items = [r for r in resources if isinstance(r, dict) and isinstance(r.get("resourceType"), str)]
    check_r4(items)
    patients = [r for r in items if r["resourceType"] == "Patient"]
    if patient_id is not None:
        patients = [p for p in patients if p.get("id") == patient_id]
    if not patients:
        raise RecordError(
            f"no Patient/{patient_id} in the record" if patient_id else "no Patient in the record"
        )
    patient = patients[0]
    pid = patient["id"] if isinstance(patient.get("id"), str) else ""
    mine = {f"Patient/{pid}", *aliases}
    record = PatientRecord(patient=patient, patient_id=pid, mappings=mappings)
    for resource in items:
        subject = _subject(resource)
        if (subject is not None and resource is not patient and subject not in mine
                and (not pid or not subject.endswith(f"/Patient/{pid}"))):
            continue
        record.by_type.setdefault(resource["resourceType"], []).append(resource)
        rid = resource.get("id")
        if isinstance(rid, str):
            record.by_ref[f"{resource['resourceType']}/{rid}"] = resource
    for report in record.by_type.get("DiagnosticReport", []):
        when = clinical_date(report)
        if when is None or status_of(report) in IGNORED_STATUSES:
            continue
        for result in as_list(report.get("result")):
            ref = reference_of(result)
            if ref:
                record.report_dates.setdefault(ref, when)
    _index(record, mappings)
    return record


def _concepts_of(mappings: Mappings, code: Any) -> tuple[str, ...]:
    found: tuple[str, ...] = ()
    for coding in codings(code):
        names = mappings.concepts_for(coding.get("system"), coding.get("code"))
        if names:
            found = found + names if found else names
    return tuple(dict.fromkeys(found)) if len(found) > 1 else found


def _index(record: PatientRecord, mappings: Mappings) -> None:
    index = record.by_concept
    for entry in _observation_entries(record, mappings):
        for name in entry.concepts:
            index.setdefault(name, []).append(entry)
    for rtype, key in (("Condition", "code"), ("Procedure", "code"),
                       ("DiagnosticReport", "code"), ("Immunization", "vaccineCode")):
        for resource in record.by_type.get(rtype, []):
            names = _coded_concepts(mappings, rtype, key, resource)
            if not names:
                continue
            entry = Entry(resource, names, clinical_date(resource))
            for name in entry.concepts:
                index.setdefault(name, []).append(entry)
    for entries in index.values():
        entries.sort(key=_newest_first_key, reverse=True)


def _newest_first_key(entry: Entry) -> tuple[date, str, str]:
    """Day, then the time as written, then the id: the same order whatever order the server
    sent the resources in (two results on one day must not be decided by arrival order)."""
    resource = entry.resource
    written = ""
    for key in ("effectiveDateTime", "effectiveInstant", "issued", "performedDateTime",
                "onsetDateTime", "recordedDate", "occurrenceDateTime"):
        value = resource.get(key)
        if isinstance(value, str):
            written = value
            break
    else:
        period = resource.get("effectivePeriod")
        if isinstance(period, dict) and isinstance(period.get("start"), str):
            written = period["start"]
    day = entry.when.day if entry.when else date.min
    return day, written, str(resource.get("id") or "")


def _observation_entries(record: PatientRecord, mappings: Mappings) -> Iterator[Entry]:
    for resource in record.by_type.get("Observation", []):
        if status_of(resource) in IGNORED_STATUSES:
            continue
        # effective[x], else the date of the report that lists it, else `issued`.
        when = (_observation_date(resource) or record.report_dates.get(ref_key(resource))
                or parse_date(resource.get("issued")))
        names = _concepts_of(mappings, resource.get("code"))
        if names:
            yield Entry(resource, names, when)
        # A panel's components count like Observations of their codes (see panels.py).
        for part in (c for c in as_list(resource.get("component")) if isinstance(c, dict)):
            if part_names := _concepts_of(mappings, part.get("code")):
                yield Entry(component_view(resource, part), part_names, when)


def _coded_concepts(mappings: Mappings, rtype: str, key: str, resource: dict[str, Any]
                    ) -> tuple[str, ...]:
    """Concepts of a Condition, Procedure, report (with its conclusions) or Immunization."""
    if status_of(resource) in IGNORED_STATUSES or status_of(resource) == "not-done":
        return ()
    if rtype == "Condition" and _condition_excluded(resource):
        return ()
    names = _concepts_of(mappings, resource.get(key))
    if rtype == "DiagnosticReport":
        for conclusion in as_list(resource.get("conclusionCode")):
            names = names + _concepts_of(mappings, conclusion)
    return tuple(dict.fromkeys(names))


def _condition_excluded(resource: dict[str, Any]) -> bool:
    verification = codes_of(resource.get("verificationStatus"))
    return bool(verification & {"refuted", "entered-in-error"})


def condition_active(resource: dict[str, Any]) -> bool:
    """Whether a Condition is active (clinicalStatus absent counts as active)."""
    status = codes_of(resource.get("clinicalStatus"))
    if not status:
        return True
    return bool(status & {"active", "recurrence", "relapse"})

