"""Which resources of a read are about this patient: the subject check at the FHIR boundary."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from service.fhir.queries import FHIR_ID, RECORD_TYPES

# The keys that name the patient a clinical resource is about (R4: `subject` for most,
# `patient` for AllergyIntolerance and Consent).
SUBJECT_KEYS = ("subject", "patient", "individual")  # individual: ResearchSubject
# Types read per patient: each must name this patient, or it is not used (a resource without
# a subject could be anyone's).
# (The patient's ResearchSubjects in every study are read for criteria on enrolment elsewhere.)
PATIENT_TYPES = frozenset(RECORD_TYPES) | {"ResearchSubject"}
_RELATIVE = re.compile(r"Patient/([^/]+)(?:/_history/[^/]+)?")


def patient_reference_id(reference: Any, base_url: str | None) -> str | None:
    """The Patient id a reference means on this FHIR server; None for anything else.

    Ours are `Patient/{id}` (optionally `/_history/{v}`) and the same under the configured
    base URL. An absolute URL on another host, a contained or `urn:` reference, or a
    reference to another type means no patient of ours.
    """
    if not isinstance(reference, str):
        return None
    ref = reference.strip()
    if "://" in ref:
        if not base_url:
            return None
        base, given = urlsplit(base_url.rstrip("/")), urlsplit(ref)
        if (given.scheme.lower(), given.netloc.lower()) != (base.scheme.lower(),
                                                              base.netloc.lower()):
            return None
        if given.query or given.fragment or not given.path.startswith(base.path + "/"):
            return None
        ref = given.path[len(base.path) + 1:]
    match = _RELATIVE.fullmatch(ref)
    if match is None or not FHIR_ID.fullmatch(match.group(1)):
        return None
    return match.group(1)


def subject_of(resource: dict[str, Any], base_url: str | None) -> str | None:
    """The id of our patient a resource names in subject/patient; None when it names none."""
    for key in SUBJECT_KEYS:
        value = resource.get(key)
        if isinstance(value, dict) and "reference" in value:
            return patient_reference_id(value.get("reference"), base_url)
    return None


def belongs_to(resource: Any, patient_id: str, base_url: str | None) -> bool:
    """Whether a resource of a read may be used for this patient."""
    if not isinstance(resource, dict):
        return False
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        return resource.get("id") == patient_id
    names_someone = any(isinstance(resource.get(k), dict) for k in SUBJECT_KEYS)
    if rtype in PATIENT_TYPES or names_someone:
        return subject_of(resource, base_url) == patient_id
    return True  # Medication, Practitioner...: about no patient


def own_resources(
    resources: Iterable[dict[str, Any]], patient_id: str, base_url: str | None
) -> list[dict[str, Any]]:
    """The resources about this patient; other patients' and unattributed ones are left out."""
    return [r for r in resources if belongs_to(r, patient_id, base_url)]
