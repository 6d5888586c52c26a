"""The Flask application factory: one blueprint per surface, dependencies injectable for tests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask

from service.api_auth import install_api_auth
from service.jobs import JobQueue
from service.problems import register_error_handlers
from service.runner import Screener, default_client_factory
from service.services import Services
from service.settings import Settings


def create_app(
    settings: Settings,
    *,
    screener: Any = None,
    queue: JobQueue | None = None,
    client_factory: Callable[[Settings], Any] | None = None,
    cds_verifier: Any = None,
) -> Flask:
    """Build the app for these settings; pass fakes for screener/queue/client_factory in tests."""
    from service import api, cds_hooks, fhir_notify, health, openapi, webhooks
    from service.cds_auth import CdsJwtVerifier

    logging.getLogger("service").setLevel(settings.log_level)
    client_factory = client_factory or default_client_factory
    if screener is None:
        screener = Screener(settings, client_factory=client_factory)
    if queue is None:
        queue = JobQueue(settings, screener)
    if cds_verifier is None:
        cds_verifier = CdsJwtVerifier(settings, seen=queue.store.remember_once)

    app = Flask("service", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # keep api.md's key order (patient, asOf, studies)
    app.extensions["eligibility"] = Services(
        settings=settings, screener=screener, queue=queue, client_factory=client_factory,
        cds_verifier=cds_verifier,
    )
    register_error_handlers(app)
    install_api_auth(app, settings)
    for blueprint in (health.bp, api.bp, fhir_notify.bp, webhooks.bp, cds_hooks.bp, openapi.bp):
        app.register_blueprint(blueprint)
    return app
