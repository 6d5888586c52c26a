"""CDS Hooks 2.0 `patient-view` service: discovery, trial-eligibility cards, feedback."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Response, jsonify, request

from service.core.log_setup import escape_controls
from service.fhir.errors import failed_outcome
from service.usecases.cds_prefetch import (
    _PREFETCH_KEYS,  # noqa: F401 - the tests group seed records by it
    PATIENT_TEMPLATE,
    own_resources,
    prefetch_templates,
)
from service.web import requests_in
from service.web.auth import auth_mode
from service.web.cds_auth import CdsAuthError
from service.web.problems import Problem
from service.web.services import services

log = logging.getLogger(__name__)

bp = Blueprint("cds_hooks", __name__)

SERVICE_ID = "trial-eligibility"
SOURCE_LABEL = "Trial eligibility screening"
SUMMARY_MAX = 139  # the CDS Hooks specification: "<140 characters"
CARD_STATUSES = ("eligible", "potential-candidate")
# A card's uuid is stable for (hook instance, study) so feedback can be matched to it.
_CARD_NAMESPACE = uuid.UUID("6f1d5c1e-8a51-4f07-9b0c-2a3e7d54c0a1")
_CARD_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}", re.ASCII)


def _templates() -> dict[str, str]:
    return prefetch_templates(services().screener.mappings.observation_codes())


@bp.get("/cds-services")
@auth_mode("public")
def discovery() -> Response:
    """The CDS Hooks discovery document."""
    return jsonify({
        "services": [{
            "hook": "patient-view",
            "id": SERVICE_ID,
            "title": "Clinical trial eligibility",
            "description": (
                "Shows a card for each recruiting trial (pediatric lupus CAR-T studies) the "
                "patient is eligible for or may be eligible for, with the criteria to confirm."
            ),
            "prefetch": _templates(),
            "usageRequirements": (
                "Send the prefetch, or fhirServer with fhirAuthorization; the fhirServer must "
                "be on this service's allow-list."
            ),
        }]
    })


def _authenticate(audience: str | list[str]) -> None:
    svc = services()
    header = request.headers.get("Authorization")
    # JWT optional: the API token (checked before the view when one is set) guards the
    # service instead; a JWT sent anyway is still verified.
    if not svc.settings.cds_jwt_required and (svc.settings.api_tokens or not header):
        return
    try:
        svc.cds_verifier.verify(header, audience=audience)
    except CdsAuthError as exc:
        log.warning("CDS Hooks request refused: %s", escape_controls(str(exc)))
        raise Problem(401, str(exc), slug="cds-jwt") from None


def _resources(value: Any) -> list[dict[str, Any]] | None:
    """A prefetch value as a list of resources (a searchset Bundle flattened); None if absent."""
    if not isinstance(value, dict):
        return None
    if value.get("resourceType") != "Bundle":
        return [value]
    if any(link.get("relation") == "next" for link in value.get("link") or []
           if isinstance(link, dict)):
        return None  # only the first page: treat as missing and read the whole result
    out = []
    for entry in value.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if failed_outcome(resource) or failed_outcome((entry.get("response") or {}).get(
                "outcome") if isinstance(entry.get("response"), dict) else None):
            return None  # the EHR's search failed: read it ourselves, never use "no data"
        if isinstance(resource, dict) and resource.get("resourceType") != "OperationOutcome":
            out.append(resource)
    return out


def _fhir_client(body: dict[str, Any]) -> Any:
    """A client for the request's fhirServer (allow-listed only); None means cannot fetch."""
    svc = services()
    server = body.get("fhirServer")
    if not isinstance(server, str) or not server:
        raise Problem(412, "Prefetch data is missing and no fhirServer was given.",
                      slug="cds-prefetch-missing")
    allowed = {u.rstrip("/") for u in svc.settings.cds_allowed_fhir_servers}
    if server.rstrip("/") not in allowed:
        log.warning("CDS request names a fhirServer that is not allow-listed; not contacted")
        raise Problem(412, "Prefetch data is missing and the fhirServer is not on this "
                      "service's allow-list (CDS_ALLOWED_FHIR_SERVERS).",
                      slug="cds-fhir-server-not-allowed")
    auth = body.get("fhirAuthorization") or {}
    token = auth.get("access_token") if isinstance(auth, dict) else None
    overrides: dict[str, Any] = {
        "fhir_base_url": server.rstrip("/"),
        "fhir_auth": "bearer" if token else "none",
        "fhir_bearer_token": token or None,
        # The EHR waits for the cards: fail fast instead of retrying.
        "fhir_timeout": min(svc.settings.fhir_timeout, 5.0),
        "fhir_max_retries": 0,
    }
    return svc.client_factory(svc.settings.with_overrides(**overrides))


def _gather(body: dict[str, Any], pid: str) -> list[dict[str, Any]]:
    """Prefetched resources, with whatever is missing read from the allow-listed fhirServer."""
    from service.fhir.errors import FhirError

    prefetch = body.get("prefetch") or {}
    if not isinstance(prefetch, dict):
        raise Problem(400, "prefetch must be an object.", slug="invalid-body")
    resources: list[dict[str, Any]] = []
    missing: list[tuple[str, str]] = []
    for key, template in _templates().items():
        found = _resources(prefetch.get(key))
        if found is None:
            missing.append((key, template.replace(PATIENT_TEMPLATE, pid)))
        else:
            resources.extend(found)
    if missing:
        client = _fhir_client(body)
        try:
            for key, query in missing:
                if key == "patient":
                    resources.append(client.read("Patient", pid))
                    continue
                rtype, _, qs = query.partition("?")
                resources.extend(client.search(rtype, dict(parse_qsl(qs))))
        except FhirError as exc:
            log.warning("CDS fetch from fhirServer failed: %s", type(exc).__name__)
            raise Problem(412, "The data needed could not be read from the fhirServer.",
                          slug="cds-fetch-failed") from None
        finally:
            getattr(client, "close", lambda: None)()
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if not any(p.get("id") == pid for p in patients):
        raise Problem(400, "The prefetched Patient is not the context's patient.",
                      slug="cds-patient-mismatch")
    # Only what is about this patient: a relative subject, or one on the request's own
    # (allow-listed) FHIR server; other patients' and unattributed resources are left out.
    return own_resources(resources, pid, _own_base(body))


def _own_base(body: dict[str, Any]) -> str | None:
    server = body.get("fhirServer")
    allowed = {u.rstrip("/") for u in services().settings.cds_allowed_fhir_servers}
    if isinstance(server, str) and server.rstrip("/") in allowed:
        return server.rstrip("/")
    return None


def _card(study: Any, info: dict[str, Any], pid: str, hook_instance: str) -> dict[str, Any]:
    svc = services()
    title = info.get("title") or study.study
    unknown = [c for c in study.criteria if c.result == "unknown"]
    not_met = [c for c in study.criteria if c.result == "not-met"]
    if study.status == "eligible":
        summary = f"Eligible for trial: {title}"
    else:
        summary = f"Possible trial candidate ({len(unknown)} to confirm): {title}"
    if len(summary) > SUMMARY_MAX:
        summary = summary[: SUMMARY_MAX - 1].rstrip() + "…"
    lines = [f"**{title}**" + (f" ({info['registryId']})" if info.get("registryId") else ""), ""]
    lines.append("Status: **" + study.status.replace("-", " ") + "**")
    for heading, items in (("Not met", not_met), ("Unknown: to confirm", unknown)):
        if items:
            lines += ["", f"**{heading}:**"]
            # An exclusion's reason already says "Excluded: ..." or why it cannot tell.
            lines += [f"- `{c.id}`{' (exclusion)' if c.type == 'exclusion' else ''}: {c.reason}"
                      for c in items]
    if not not_met and not unknown:
        lines += ["", "All criteria are met in the record."]
    # The coordinator page (docs/http-api.md, CDS Hooks), scrolled to this study.
    link = f"{svc.settings.public_url}/patients/{pid}#study-{study.study}"
    return {
        "uuid": str(uuid.uuid5(_CARD_NAMESPACE, f"{hook_instance}|{study.study}")),
        "summary": summary,
        "indicator": "info",
        "detail": "\n".join(lines),
        "source": {"label": SOURCE_LABEL, "url": svc.settings.public_url},
        # Manual criteria's reasons point to its confirmation forms ("on the patient page").
        "links": [{"label": "Open the patient page", "url": link, "type": "absolute"}],
    }


@bp.post(f"/cds-services/{SERVICE_ID}")
@auth_mode("cds")
def patient_view() -> Response:
    """Cards for the studies the patient is eligible for or a potential candidate of."""
    from service.usecases.screening_failures import ScreeningFailure

    svc = services()
    _authenticate(f"{svc.settings.public_url}/cds-services/{SERVICE_ID}")
    body = requests_in.json_body()
    if not isinstance(body, dict):
        raise Problem(400, "The body must be a CDS Hooks request object.", slug="invalid-body")
    if body.get("hook") != "patient-view":
        raise Problem(400, "This service answers the patient-view hook.", slug="invalid-body")
    hook_instance = body.get("hookInstance")
    if not isinstance(hook_instance, str) or not hook_instance:
        raise Problem(400, "hookInstance is required.", slug="invalid-body")
    context = body.get("context")
    if not isinstance(context, dict):
        raise Problem(400, "context with patientId is required.", slug="invalid-body")
    pid = requests_in.patient_id(context.get("patientId"), field="context.patientId")
    resources = _gather(body, pid)
    try:
        evaluation = svc.screener.evaluate_resources(
            resources, patient_id=pid, as_of=svc.clock.today()
        )
    except ScreeningFailure as failure:
        raise Problem(422, f"The record cannot be evaluated: {failure.reason}",
                      slug="record-not-evaluable") from None
    info = {s["study"]: s for s in svc.screener.studies_json()}
    cards = [
        _card(study, info.get(study.study, {}), pid, hook_instance)
        for study in evaluation.studies
        if study.status in CARD_STATUSES
    ]
    log.info("patient-view for Patient/%s: %d card(s)", pid, len(cards))
    return jsonify({"cards": cards})


@bp.post(f"/cds-services/{SERVICE_ID}/feedback")
@auth_mode("cds")
def feedback() -> Response:
    """Card feedback (accepted/overridden): logged."""
    svc = services()
    # Clients name either the service endpoint or the feedback endpoint as aud.
    service_url = f"{svc.settings.public_url}/cds-services/{SERVICE_ID}"
    _authenticate([service_url, f"{service_url}/feedback"])
    body = requests_in.json_body()
    items = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise Problem(400, "The body must be {\"feedback\": [...]}.", slug="invalid-body")
    for item in items:
        # A card id is a uuid this service made: anything else (CR/LF above all, which would
        # forge log lines) is refused, not logged.
        if not isinstance(item, dict) or not isinstance(item.get("card"), str) or \
                not _CARD_ID.fullmatch(item["card"]) or \
                item.get("outcome") not in ("accepted", "overridden"):
            raise Problem(400, "Each feedback item needs card (the card's uuid) and outcome "
                          "(accepted or overridden).", slug="invalid-body")
    for item in items:
        log.info("CDS feedback: card %s %s", item["card"], item["outcome"])
    return jsonify({})
