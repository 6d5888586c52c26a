"""What a CDS Hooks client prefetches for the patient-view hook: one FHIR query per kind of
record the engine reads, and which of the resources it sends are about the patient."""

from __future__ import annotations

from urllib.parse import quote

from service.fhir.queries import RECORD_TYPES, code_token
from service.fhir.subjects import own_resources

__all__ = ["PATIENT_TEMPLATE", "own_resources", "prefetch_templates"]

PATIENT_TEMPLATE = "{{context.patientId}}"
_PREFETCH_KEYS = {
    "Observation": "observations",
    "Condition": "conditions",
    "MedicationRequest": "medicationRequests",
    "MedicationStatement": "medicationStatements",
    "MedicationAdministration": "medicationAdministrations",
    "Procedure": "procedures",
    "AllergyIntolerance": "allergies",
    "Consent": "consents",
    "DiagnosticReport": "diagnosticReports",
}
_INCLUDES = {
    "MedicationRequest": "MedicationRequest:medication",
    "MedicationStatement": "MedicationStatement:medication",
    "MedicationAdministration": "MedicationAdministration:medication",
}

def prefetch_templates(observation_codes: tuple[str, ...]) -> dict[str, str]:
    """Prefetch key -> FHIR query template for everything the engine reads."""
    templates = {"patient": f"Patient/{PATIENT_TEMPLATE}"}
    for rtype in RECORD_TYPES:
        key = _PREFETCH_KEYS.get(rtype)
        if key is None:
            continue
        query = f"{rtype}?patient={PATIENT_TEMPLATE}"
        if rtype == "Observation":
            codes = sorted({code_token(c) for c in observation_codes})
            if not codes:
                continue
            query += "&code=" + ",".join(quote(c, safe="|:/.-_") for c in codes)
        if rtype in _INCLUDES:
            query += f"&_include={_INCLUDES[rtype]}"
        templates[key] = query
    return templates
