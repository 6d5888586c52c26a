"""WSGI entry point: `gunicorn -c python:service.web.gunicorn_conf 'service.web.wsgi:build()'`."""

from __future__ import annotations

import atexit
import sys

from flask import Flask

from service.core.settings import Settings, SettingsError


def build() -> Flask:
    """Read the settings, build the app and start the embedded queue workers (EMBEDDED_WORKERS)."""
    from service.web.app import create_app

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"eligibility: bad settings: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    from service.core.log_setup import configure_logging

    # gunicorn configures only its own loggers: without this the service's lines vanish.
    configure_logging(settings.log_level, settings.log_format)
    # Under compose the web service starts before HAPI: wait for it, bounded by
    # FHIR_WAIT_SECONDS. If it is still down, start anyway: /readyz says why and queued
    # screenings wait and retry, which beats a restart loop.
    from service.usecases.fhir_readiness import FhirNotReady, wait_for_fhir_server

    try:
        wait_for_fhir_server(settings)
    except FhirNotReady as exc:
        print(f"eligibility: {exc}; starting anyway (see /readyz)", file=sys.stderr)
    app = create_app(settings)
    if settings.embedded_workers:
        queue = app.extensions["eligibility"].queue
        queue.start_embedded(settings.embedded_workers)
        atexit.register(queue.stop)
    return app
