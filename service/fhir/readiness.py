"""Wait for the FHIR server at start: GET metadata until it answers, within FHIR_WAIT_SECONDS."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from service.core.settings import Settings


class FhirNotReady(Exception):
    """The FHIR server did not answer GET metadata within FHIR_WAIT_SECONDS."""


def wait_until_ready(
    settings: Settings, client_factory: Any = None, out: TextIO | None = None
) -> None:
    """Wait up to FHIR_WAIT_SECONDS for GET metadata to answer (0: do not wait)."""
    if settings.fhir_wait_seconds <= 0:
        return
    from service.fhir.client import FhirClient as default_client_factory

    client = (client_factory or default_client_factory)(
        settings.with_overrides(fhir_max_retries=0, fhir_timeout=min(settings.fhir_timeout, 5.0))
    )
    deadline = time.monotonic() + settings.fhir_wait_seconds
    delay = 0.5
    while True:
        try:
            client.capabilities()
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            if time.monotonic() + delay > deadline:
                raise FhirNotReady(
                    f"FHIR server {settings.fhir_base_url} did not answer GET metadata within "
                    f"FHIR_WAIT_SECONDS={settings.fhir_wait_seconds:g} ({type(exc).__name__})"
                ) from None
            print(f"waiting for the FHIR server at {settings.fhir_base_url} ...",
                  file=out or sys.stderr)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
