"""What a change notification is about: is it FHIR R4, which of our patients does it name.

The rest-hook endpoint (service/web/notify.py) validates the request, asks these, and queues
a screening of the patient named.
"""

from __future__ import annotations

from typing import Any

from service.engine.record import RecordError, check_r4
from service.fhir.ids import FHIR_ID
from service.fhir.queries import RECORD_TYPES
from service.fhir.subjects import subject_of

# The resource types a change of which may change a screening: the Patient and its record.
TRIGGER_TYPES: tuple[str, ...] = ("Patient", *RECORD_TYPES)


class NotR4(ValueError):
    """The resource is STU3 or R5, not R4 (the message says which sign gave it away)."""


def refuse_other_versions(resource: dict[str, Any]) -> None:
    """NotR4 for a resource of another FHIR version (the engine's own check)."""
    try:
        check_r4([resource])
    except RecordError as exc:
        raise NotR4(str(exc)) from None


def patient_of(resource: dict[str, Any], base_url: str | None) -> str | None:
    """The logical id of our patient a resource is about (the Patient itself or its subject).

    A subject on another server (an absolute URL off `base_url`) is not our patient, even
    with the same id.
    """
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) and FHIR_ID.fullmatch(rid) else None
    return subject_of(resource, base_url)
