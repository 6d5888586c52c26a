"""`GET /metrics`: the Prometheus text exposition, behind the API token when one is set."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, request

from service.core import metrics
from service.web.services import services

bp = Blueprint("metrics", __name__)

# Which trigger a screening started by a request counts under, by blueprint.
_TRIGGERS = {"api": "api", "pages": "pages", "cds_hooks": "cds-hooks", "webhooks": "webhook",
             "fhir_notify": "fhir-notify"}


@bp.get("/metrics")
def metrics_text() -> Response:
    """Every process's counters and histograms (multiprocess) plus the queue backlog."""
    store = services().queue.store
    body, content_type = metrics.exposition(lambda: float(store.pending_count()))
    return Response(body, content_type=content_type)


def install_metrics(app: Flask) -> None:
    """Register /metrics and tag each request's screenings with its surface's trigger."""
    app.register_blueprint(bp)

    @app.before_request
    def _trigger() -> None:
        request.environ["eligibility.trigger"] = metrics.set_trigger(
            _TRIGGERS.get(request.blueprint or "", "other"))

    @app.teardown_request
    def _untrigger(_exc: Any) -> None:
        token = request.environ.pop("eligibility.trigger", None)
        if token is not None:
            metrics.reset_trigger(token)
