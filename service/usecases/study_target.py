"""A study's enrolment target, read from its ResearchStudy ("target 50 participants")."""

from __future__ import annotations

import re

from service.fhir.errors import FhirError
from service.usecases.screener import ScreeningService

# The seed ResearchStudies state the target in their description ("target 50 participants").
_TARGET = re.compile(r"target\s+(\d+)\s+participants", re.IGNORECASE)


def enrolment_target(svc: ScreeningService, study_ref: str) -> int | None:
    """The target number of participants, or None when the ResearchStudy states none or
    cannot be read (the log shows no progress bar then)."""
    kind, _, rid = study_ref.partition("/")
    try:
        study = svc.client().read(kind, rid)
    except (FhirError, ValueError):
        return None
    found = _TARGET.search(str(study.get("description") or ""))
    return int(found.group(1)) if found else None
