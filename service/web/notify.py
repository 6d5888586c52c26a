"""FHIR R4 rest-hook Subscription endpoint: find the changed resource's patient, queue a screening.

HAPI delivers a subscription with payload as `PUT {endpoint}/{type}/{id}` carrying the changed
resource (DELETE for a deletion) and one without payload as an empty `POST {endpoint}`. The
channel header configured by `eligibility subscribe` carries `Authorization: Bearer <secret>`.
Every answer is an OperationOutcome.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, json, request
from werkzeug.exceptions import RequestEntityTooLarge

from service.core.log_setup import escape_controls
from service.fhir.ids import FHIR_ID
from service.usecases.notification import TRIGGER_TYPES, NotR4, patient_of, refuse_other_versions
from service.web import requests_in
from service.web.auth import auth_mode, bearer_token, token_matches
from service.web.services import services

log = logging.getLogger(__name__)

bp = Blueprint("fhir_notify", __name__)

FHIR_JSON = "application/fhir+json"
# One notification queues at most this many patients: a Bundle naming more is refused whole
# (a Subscription notifies one change; a bulk import should use POST /screenings).
MAX_NOTIFY_PATIENTS = 100


class NotifyError(Exception):
    """A notification that cannot be accepted; answered with an OperationOutcome."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def outcome(severity: str, code: str, diagnostics: str, status: int) -> Response:
    """An OperationOutcome response."""
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }
    return Response(json.dumps(body), status=status, mimetype=FHIR_JSON)


def _check_secret() -> None:
    secret = services().settings.notify_secret
    if not secret:
        raise NotifyError(401, "security", "FHIR_NOTIFY_SECRET is not configured on this service")
    presented = bearer_token(request.headers.get("Authorization"))
    if not token_matches(presented, (secret,)):
        raise NotifyError(401, "security", "missing or wrong notification secret")


def _parse_resource(raw: bytes) -> dict[str, Any]:
    try:
        resource = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise NotifyError(400, "structure", "the body is not JSON (or is nested too deeply)"
                          ) from None
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise NotifyError(400, "structure", "the body is not a FHIR resource (no resourceType)")
    return resource


def _validate_r4(resource: dict[str, Any]) -> None:
    """Refuse STU3/R5 resources with a clear reason, then anything that is not valid R4."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        refuse_other_versions(resource)
    except NotR4 as exc:
        raise NotifyError(400, "not-supported", str(exc)) from None
    rtype = resource["resourceType"]
    try:
        model = get_fhir_model_class(rtype)
    except (ValueError, KeyError):
        raise NotifyError(
            400, "not-supported", f"{rtype[:64]!r} is not a FHIR R4 resource type"
        ) from None
    try:
        model.model_validate(resource)
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        details = []
        for err in (errors() if callable(errors) else [])[:3]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            details.append(f"{where}: {err.get('msg')}")
        text = "; ".join(details) or "invalid content"
        raise NotifyError(400, "structure", f"{rtype} is not valid FHIR R4: {text}") from None


def _queue_for(resource: dict[str, Any]) -> Response:
    rtype = resource["resourceType"]
    pid = patient_of(resource, services().settings.fhir_base_url)
    if pid is None:
        log.info("notification for a %s not about a patient; nothing queued", rtype)
        return outcome("information", "informational",
                       f"{rtype} does not reference a Patient; nothing to screen", 200)
    submitted = services().queue.enqueue_screening(pid, source=f"fhir-notify:{rtype}")
    verb = "joined a queued" if submitted.coalesced else "queued a"
    return outcome("information", "informational",
                   f"{verb} screening of Patient/{pid} (job {submitted.job_id})", 200)


def _handled(view: Any) -> Any:
    """Answer NotifyError as an OperationOutcome."""

    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            _check_secret()
            return view(*args, **kwargs)
        except NotifyError as exc:
            log.warning("refused FHIR notification: %s", escape_controls(exc.message))
            return outcome("error", exc.code, exc.message, exc.status)
        except RequestEntityTooLarge:
            limit = services().settings.max_body_bytes
            log.warning("refused FHIR notification: body over %d bytes", limit)
            return outcome("error", "too-costly", f"the body is larger than {limit} bytes", 413)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return auth_mode("own")(wrapper)


@bp.post("/fhir-notify")
@_handled
def notify_without_payload() -> Response:
    """A notification without payload (or a Bundle/resource POSTed by other servers)."""
    raw = requests_in.raw_body()
    if not raw.strip():
        # HAPI's empty notification names neither resource nor patient: nothing to screen.
        log.info("FHIR notification without payload; cannot tell the patient, nothing queued")
        return outcome(
            "information", "informational",
            "notification without payload received; the patient cannot be known, so nothing "
            "was queued (set Subscription.channel.payload to application/fhir+json)", 200,
        )
    resource = _parse_resource(raw)
    if resource["resourceType"] == "Bundle":
        return _queue_bundle(resource)
    _check_type(resource["resourceType"])
    _validate_r4(resource)
    return _queue_for(resource)


def _queue_bundle(bundle: dict[str, Any]) -> Response:
    _validate_r4(bundle)
    base = services().settings.fhir_base_url
    patients: dict[str, None] = {}
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") in TRIGGER_TYPES:
            pid = patient_of(resource, base)
            if pid:
                patients[pid] = None
    if len(patients) > MAX_NOTIFY_PATIENTS:
        raise NotifyError(413, "too-costly",
                          f"the Bundle names {len(patients)} patients; a notification may name "
                          f"at most {MAX_NOTIFY_PATIENTS} (use POST /screenings for more); "
                          "nothing was queued")
    for pid in patients:
        services().queue.enqueue_screening(pid, source="fhir-notify:Bundle")
    return outcome("information", "informational",
                   f"queued screening of {len(patients)} patient(s)", 200)


def _check_type(rtype: str) -> None:
    if rtype not in TRIGGER_TYPES:
        raise NotifyError(400, "not-supported",
                          f"{rtype[:64]!r} is not a resource type this service screens on")


@bp.put("/fhir-notify/<rtype>/<rid>")
@_handled
def notify_with_payload(rtype: str, rid: str) -> Response:
    """A rest-hook notification with the changed resource as payload."""
    _check_type(rtype)
    if not FHIR_ID.fullmatch(rid):
        raise NotifyError(400, "value", "the id in the URL is not a FHIR id")
    resource = _parse_resource(requests_in.raw_body())
    if resource["resourceType"] != rtype:
        raise NotifyError(400, "invalid",
                          f"the body is a {resource['resourceType'][:64]}, the URL says {rtype}")
    if resource.get("id") not in (None, rid):
        raise NotifyError(400, "invalid", "the body's id differs from the id in the URL")
    _validate_r4(resource)
    return _queue_for(resource)


@bp.delete("/fhir-notify/<rtype>/<rid>")
@_handled
def notify_deleted(rtype: str, rid: str) -> Response:
    """A deletion: the resource is gone, so its patient cannot be read; logged only."""
    _check_type(rtype)
    log.info("FHIR notification: %s deleted; patient unknown, nothing queued", rtype)
    return outcome("information", "informational",
                   f"deletion of {rtype} noted; the patient cannot be known, nothing queued", 200)
