"""FHIR logical ids: what an id may look like, and a Patient id from '123' or 'Patient/123'."""

from __future__ import annotations

import re

# FHIR R4 id: 1-64 characters of letters, digits, '-' and '.'. Anything else never reaches a URL.
# A FHIR logical id (R4 `id` datatype); the one definition the service checks ids against.
# "." and ".." match the R4 pattern but are path segments: a URL normaliser turns
# `Patient/..` into `Patient/` (a search of every patient), so they are never ids here.
FHIR_ID = re.compile(r"(?!\.\.?\Z)[A-Za-z0-9\-.]{1,64}")


def normalize_patient_id(value: str) -> str:
    """The logical id of 'Patient/123' or '123'; ValueError when it is not a FHIR id."""
    if not isinstance(value, str):
        raise ValueError("patient id must be a string")
    candidate = value.strip()
    if candidate.startswith("Patient/"):
        candidate = candidate[len("Patient/") :]
    if not FHIR_ID.fullmatch(candidate):
        raise ValueError("patient id must be 1-64 letters, digits, '-' or '.' (a FHIR logical id)")
    return candidate
