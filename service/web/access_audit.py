"""Access audit of the coordinator pages: one entry per request that shows or changes a patient.

A request is audited when its endpoint is listed below, when its URL names a patient
(`<raw_id>`), or when the page it renders shows patients (a template given `pid` or `rows`):
a new page showing patients is audited without being listed. The entry names the signed-in
user's id, the action, the patient ids, the outcome and the request id (docs/deployment.md
"Access audit"); the writing is service.usecases.access_audit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, before_render_template, current_app, g, request

from service.core.log_setup import REQUEST_ID
from service.usecases.access_audit import AuditTrail

log = logging.getLogger(__name__)
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 id: what the pages accept in a URL

# endpoint -> (action, IHE BALP pattern: read, query, create, update)
ACTIONS: dict[str, tuple[str, str]] = {
    "pages.patient_page": ("patient-view", "read"),
    "pages.sledai_worksheet": ("sledai-view", "read"),
    "pages.classification_worksheet": ("classification-view", "read"),
    "pages.worklist": ("worklist-view", "query"),
    "pages.study_log": ("log-view", "query"),
    "pages.study_log_csv": ("log-export", "query"),
    "pages.confirm": ("confirmation-recorded", "create"),
    "pages.sledai_save": ("sledai-recorded", "create"),
    "pages.classification_save": ("classification-recorded", "create"),
    "pages.undo": ("confirmation-undone", "update"),
    "pages.workflow": ("workflow-changed", "update"),
    "pages.screen_again": ("screen-again", "update"),
}


def shown(patient_ids: Iterable[str]) -> None:
    """Say which patients this request shows (a page without a template: the CSV export)."""
    g.setdefault("audit_patients", []).extend(str(p) for p in patient_ids)


def _from_template(_app: Flask, template: Any, context: dict[str, Any], **_: Any) -> None:
    # Whatever a page renders about patients is what it showed.
    ids = []
    if isinstance(context.get("pid"), str):
        ids.append(context["pid"])
    for row in context.get("rows") or ():
        pid = getattr(row, "patient_id", None)
        if isinstance(pid, str):
            ids.append(pid)
    if ids:
        shown(ids)


def _outcome(status: int, user: Any) -> str:
    if user is None or status in (401, 403):
        return "denied"
    return "success" if status < 400 else "failure"


def install_access_audit(app: Flask, audit: AuditTrail) -> None:
    """Record each audited pages request once, after its answer is made."""
    from service.web.pages.signin import current_user

    app.extensions["access_audit"] = audit  # looked up per request: tests may swap it
    before_render_template.connect(_from_template, app)

    @app.after_request
    def _audit(response: Response) -> Response:
        endpoint = request.endpoint or ""
        if not endpoint.startswith("pages."):
            return response
        patients = list(g.pop("audit_patients", []))
        raw = (request.view_args or {}).get("raw_id")
        if isinstance(raw, str) and FHIR_ID.fullmatch(raw):
            patients.insert(0, raw)  # anything else was answered 404: no patient shown
        listed = ACTIONS.get(endpoint)
        if listed is None and not patients:
            return response
        action, pattern = listed or (endpoint.removeprefix("pages."),
                                     "read" if request.method == "GET" else "update")
        user = current_user()
        view_args = request.view_args or {}
        trail: AuditTrail = current_app.extensions["access_audit"]
        # The form only when the view read it: parsing it here could fail (413) or wait on
        # a body the view refused unread.
        form = request.__dict__.get("form")
        trail.record(
            action=action, pattern=pattern, user=user.name if user else None,
            patients=patients, outcome=_outcome(response.status_code, user),
            status=response.status_code, request_id=REQUEST_ID.get(), path=request.path,
            address=request.remote_addr,
            study=str(view_args.get("key") or (form or {}).get("study") or "") or None,
        )
        return response
