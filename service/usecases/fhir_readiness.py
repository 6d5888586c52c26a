"""Wait for the FHIR server at start (the CLI and the WSGI entry call this, not the client)."""

from __future__ import annotations

from typing import Any, TextIO

from service.core.settings import Settings
from service.fhir.readiness import FhirNotReady, wait_until_ready

__all__ = ["FhirNotReady", "wait_for_fhir_server"]


def wait_for_fhir_server(
    settings: Settings, client_factory: Any = None, out: TextIO | None = None
) -> None:
    """Wait up to FHIR_WAIT_SECONDS for GET metadata to answer; FhirNotReady when it never does."""
    wait_until_ready(settings, client_factory, out=out)
