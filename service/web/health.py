"""Liveness (/healthz) and readiness (/readyz: FHIR server, mappings, queue) endpoints."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from service.web.auth import auth_mode
from service.web.services import services

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@auth_mode("public")
def healthz() -> Response:
    """The process answers."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@auth_mode("public")
def readyz() -> tuple[Response, int]:
    """Ready when the FHIR server answers /metadata, mappings are loaded and the queue answers."""
    svc = services()
    checks: dict[str, str] = {}
    try:
        client = svc.client_factory(svc.settings)
        try:
            client.capabilities()
        finally:
            getattr(client, "close", lambda: None)()
        checks["fhir"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
        log.warning("readiness: FHIR server check failed: %s", type(exc).__name__)
        checks["fhir"] = f"FHIR server {svc.settings.fhir_base_url} did not answer GET metadata"
    try:
        count = len(svc.screener.study_keys())
        checks["mappings"] = "ok" if count else "no studies in the mappings"
    except Exception:  # noqa: BLE001
        checks["mappings"] = "mappings not loaded"
    try:
        svc.queue.ping()
        checks["queue"] = "ok"
    except Exception as exc:  # noqa: BLE001
        log.warning("readiness: queue check failed: %s", type(exc).__name__)
        checks["queue"] = "job queue storage did not answer"
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return jsonify(body), 200 if ready else 503
