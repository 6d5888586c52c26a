"""The Flask application factory: one blueprint per surface, dependencies injectable for tests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask

from service.core.clock import Clock
from service.core.settings import Settings
from service.queue.jobs import JobQueue
from service.usecases.access_audit import AuditTrail
from service.usecases.screener import Screener, default_client_factory
from service.web.access_audit import install_access_audit
from service.web.auth import install_api_auth
from service.web.languages import install_languages
from service.web.metrics_page import install_metrics
from service.web.pages import install_pages
from service.web.problems import register_error_handlers
from service.web.request_ids import install_request_ids
from service.web.services import Services


def create_app(
    settings: Settings,
    *,
    screener: Any = None,
    queue: JobQueue | None = None,
    client_factory: Callable[[Settings], Any] | None = None,
    cds_verifier: Any = None,
    accounts: Any = None,
    clock: Clock | None = None,
    audit: AuditTrail | None = None,
) -> Flask:
    """Build the app for these settings; tests pass fakes (screener, queue, clients, clock)."""
    from service.web import cds_hooks, health, notify, openapi, rest, webhooks
    from service.web.cds_auth import CdsJwtVerifier

    logging.getLogger("service").setLevel(settings.log_level)
    client_factory = client_factory or default_client_factory
    # One clock for every surface of this app: REST, CDS Hooks, the pages and the queue.
    clock = clock or (queue.clock if queue is not None else Clock.from_settings(settings))
    if queue is not None:
        queue.clock = clock
    if screener is None:
        screener = Screener(settings, client_factory=client_factory)
    if queue is None:
        queue = JobQueue(settings, screener, clock=clock)
    if cds_verifier is None:
        cds_verifier = CdsJwtVerifier(settings, seen=queue.store.remember_once)

    app = Flask("service", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # Keep the documented key order (docs/http-api.md): patient, asOf, studies.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["eligibility"] = Services(
        settings=settings, screener=screener, queue=queue, client_factory=client_factory,
        cds_verifier=cds_verifier, clock=clock,
    )
    register_error_handlers(app)
    install_request_ids(app)  # first: every log line of the request carries its id
    install_api_auth(app, settings)
    install_metrics(app)  # GET /metrics: behind the API token like every non-exempt route
    for blueprint in (health.bp, rest.bp, notify.bp, webhooks.bp, cds_hooks.bp, openapi.bp):
        app.register_blueprint(blueprint)
    # The coordinator pages (their own sign-in); languages first: their templates use _().
    install_languages(app)
    install_pages(app, settings, accounts=accounts, clock=clock)
    if queue.outreach is None:
        from service.usecases.outreach import outreach_for

        queue.outreach = outreach_for(settings, screener, app.extensions["pages"].accounts,
                                      clock)
    # Who saw or changed which patient (AUDIT_LOG; AUDIT_FHIR: AuditEvents via the screener's
    # FHIR client, sent in the background).
    install_access_audit(app, audit or AuditTrail(settings, client=screener.client))
    if settings.trusted_proxy_hops:
        # The client address (sign-in throttling) is the one the trusted proxies saw; only
        # X-Forwarded-For is read, PUBLIC_URL already says the scheme and host.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxy_hops, x_proto=0, x_host=0
        )
    return app
