"""Short human summaries of FHIR resources (pure): code display, value and date of evidence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.usecases.subject_rows import with_unit

_DATE_FIELDS = (
    "effectiveDateTime", "dateTime", "performedDateTime", "onsetDateTime", "recordedDate",
    "authoredOn", "issued", "birthDate", "date",
)  # fmt: skip
_PERIOD_FIELDS = ("effectivePeriod", "performedPeriod", "onsetPeriod")


@dataclass(frozen=True)
class Evidence:
    """One evidence resource as shown on the patient page."""

    ref: str
    what: str
    value: str
    date: str
    status: str
    found: bool = True


def _concept(value: Any) -> str:
    if not isinstance(value, Mapping):
        return ""
    for coding in value.get("coding") or ():
        if isinstance(coding, Mapping) and coding.get("display"):
            return str(coding["display"])
    if value.get("text"):
        return str(value["text"])
    for coding in value.get("coding") or ():
        if isinstance(coding, Mapping) and coding.get("code"):
            return f"{coding.get('code')}"
    return ""


def _quantity(q: Any) -> str:
    if not isinstance(q, Mapping) or q.get("value") is None:
        return ""
    comparator = q.get("comparator") or ""
    return with_unit(f"{comparator}{q.get('value')}", q.get("unit") or q.get("code"))


def value_text(resource: Mapping[str, Any]) -> str:
    """The value of an Observation-like resource, shortly."""
    if "valueQuantity" in resource:
        return _quantity(resource["valueQuantity"])
    if "valueCodeableConcept" in resource:
        return _concept(resource["valueCodeableConcept"])
    if "valueRatio" in resource:
        ratio = resource["valueRatio"] or {}
        num = (ratio.get("numerator") or {}).get("value")
        den = (ratio.get("denominator") or {}).get("value")
        return f"{num}:{den}"
    for key in ("valueString", "valueInteger", "valueBoolean", "valueDateTime"):
        if key in resource:
            raw = resource[key]
            if isinstance(raw, bool):
                return "yes" if raw else "no"
            return str(raw)
    if resource.get("resourceType") == "DiagnosticReport":
        return "; ".join(filter(None, (_concept(c) for c in resource.get("conclusionCode") or ())))
    if resource.get("resourceType") == "Consent":
        return str(resource.get("status") or "")
    return ""


def date_text(resource: Mapping[str, Any]) -> str:
    """The clinically relevant date of a resource (YYYY-MM-DD), or ''."""
    for key in _DATE_FIELDS:
        if isinstance(resource.get(key), str):
            return resource[key][:10]
    for key in _PERIOD_FIELDS:
        period = resource.get(key)
        if isinstance(period, Mapping) and isinstance(period.get("start"), str):
            end = period.get("end")
            return period["start"][:10] + (f" to {end[:10]}" if isinstance(end, str) else "")
    dosage = resource.get("dosage")
    if isinstance(dosage, list) and dosage:
        bounds = ((dosage[0].get("timing") or {}).get("repeat") or {}).get("boundsPeriod")
        if isinstance(bounds, Mapping) and isinstance(bounds.get("start"), str):
            return bounds["start"][:10]
    return ""


def what_text(resource: Mapping[str, Any]) -> str:
    """What the resource is: its code display (or medication, or type)."""
    kind = str(resource.get("resourceType") or "")
    if kind == "Patient":
        return "Patient (birth date, sex)"
    if kind == "Consent":
        return "Consent"
    for key in ("code", "medicationCodeableConcept", "vaccineCode"):
        shown = _concept(resource.get(key))
        if shown:
            return shown
    return kind


def summarize(ref: str, resource: Mapping[str, Any] | None) -> Evidence:
    """The Evidence of `ref` (a resource the FHIR server no longer has is marked not found)."""
    if resource is None:
        return Evidence(ref=ref, what="not found on the FHIR server", value="", date="",
                        status="", found=False)
    value = value_text(resource)
    if resource.get("resourceType") == "Patient":
        value = f"{resource.get('gender') or 'sex unknown'}"
    return Evidence(
        ref=ref,
        what=what_text(resource),
        value=value,
        date=date_text(resource),
        status=str(resource.get("status") or ""),
    )
