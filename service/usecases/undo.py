"""Undo a confirmation: mark it entered-in-error (nothing is deleted), with a Provenance."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from service.fhir.confirmations import (
    Author,
    ConfirmationError,
    entered_in_error,
    written_by_service,
)
from service.fhir.queries import FHIR_ID
from service.usecases.errors import N_, Refused
from service.usecases.screener import ScreeningService

log = logging.getLogger(__name__)


def _owned(resource: Mapping[str, Any], patient_id: str) -> bool:
    subject = (resource.get("subject") or resource.get("patient") or {}).get("reference")
    if subject != f"Patient/{patient_id}":
        return False
    # Checked here, not only by hiding the button: the hospital's own records are never undone.
    return written_by_service(resource)


def undo_confirmation(
    svc: ScreeningService, *, author: Author, patient_id: str, ref: str, now: datetime
) -> str:
    """Mark `ref` ('Observation/<id>' or 'Consent/<id>') entered-in-error; the reference.

    Refused for anything but a confirmation of this patient recorded through this service.
    """
    kind, _, rid = ref.partition("/")
    if kind not in ("Observation", "Consent") or not FHIR_ID.fullmatch(rid):
        raise Refused(N_("Not a confirmation."))
    client = svc.client()
    resource = client.read(kind, rid)
    if not _owned(resource, patient_id):
        raise Refused(N_("Not a confirmation of this patient recorded through this service: "
                      "records the hospital made are changed in the hospital's own system."))
    try:
        client.transaction(entered_in_error(resource, author, now))
    except ConfirmationError as exc:
        raise Refused(str(exc)) from None
    log.info("user %s marked %s/%s entered-in-error for Patient/%s", author.name, kind, rid,
             patient_id)
    return f"{kind}/{rid}"
