"""The OpenAPI 3.1 document of the whole HTTP API, served at /openapi.json."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from service.web.services import services

bp = Blueprint("openapi", __name__)

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_OUTCOME = {"$ref": "#/components/schemas/OperationOutcome"}


def _problem(description: str, retry_after: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": _PROBLEM}},
    }
    if retry_after:
        out["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                          "description": "Seconds to wait before retrying."}}
    return out


def _outcome(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/fhir+json": {"schema": _OUTCOME}}}


def _json(description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}},
            **extra}


_AUTH_ERRORS = {"401": _problem("Missing or wrong API token.")}
_FHIR_ERRORS = {
    "502": _problem("The FHIR server failed or refused the request."),
    "503": _problem("The FHIR server is unreachable or temporarily failing.", retry_after=True),
}
_PATIENT_PARAM = {
    "name": "patient", "in": "path", "required": True,
    "description": "FHIR logical id of the Patient ('Patient/' prefix accepted; "
                   "'.' and '..' are refused).",
    "schema": {"type": "string", "pattern": r"^(Patient/)?[A-Za-z0-9\-.]{1,64}$"},
}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"},
            "status": {"type": "integer"}, "detail": {"type": "string"},
        },
    },
    "OperationOutcome": {
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"const": "OperationOutcome"},
            "issue": {"type": "array", "items": {
                "type": "object", "required": ["severity", "code"],
                "properties": {"severity": {"type": "string"}, "code": {"type": "string"},
                               "diagnostics": {"type": "string"}},
            }},
        },
    },
    "Criterion": {
        "type": "object",
        "required": ["id", "result", "reason", "evidence"],
        "properties": {
            "id": {"type": "string"},
            "result": {"enum": ["met", "not-met", "unknown"]},
            "reason": {"type": "string"},
            "kind": {"enum": ["automatic", "manual"]},
            "type": {"enum": ["inclusion", "exclusion"],
                     "description": "An exclusion is met when the patient is not excluded."},
            "value": {"type": "object", "properties": {
                "value": {"type": ["number", "string"]}, "unit": {"type": "string"}}},
            "uln": {"type": "object"},
            "evidence": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Eligibility": {
        "type": "object",
        "required": ["patient", "asOf", "studies"],
        "properties": {
            "patient": {"type": "string", "examples": ["Patient/123"]},
            "asOf": {"type": "string", "format": "date"},
            "studies": {"type": "array", "items": {
                "type": "object", "required": ["study", "status", "criteria"],
                "properties": {
                    "study": {"type": "string"},
                    "researchStudy": {"type": "string"},
                    "status": {"enum": ["eligible", "potential-candidate", "ineligible"]},
                    "criteria": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/Criterion"}},
                },
            }},
        },
    },
    "Screening": {
        "type": "object",
        "required": ["result", "researchSubjects"],
        "properties": {
            "result": {"$ref": "#/components/schemas/Eligibility"},
            "researchSubjects": {"type": "object", "additionalProperties": {"type": "string"},
                                 "description": "study key -> ResearchSubject/<id>"},
        },
    },
    "Job": {
        "type": "object",
        "required": ["job", "state", "progress", "patients"],
        "properties": {
            "job": {"type": "string"},
            "state": {"enum": ["queued", "running", "done"]},
            "source": {"type": "string"},
            "created": {"type": "string", "format": "date-time"},
            "asOf": {"type": "string", "format": "date"},
            "studies": {"type": "array", "items": {"type": "string"}},
            "next": {"type": "string", "description": "cursor of the next page of patients"},
            "progress": {"type": "object", "properties": {
                "total": {"type": "integer"}, "done": {"type": "integer"},
                "failed": {"type": "integer"}, "pending": {"type": "integer"}}},
            "patients": {"type": "array", "items": {
                "type": "object", "required": ["patient", "state"],
                "properties": {
                    "patient": {"type": "string"},
                    "state": {"enum": ["queued", "running", "done", "failed"]},
                    "attempts": {"type": "integer"},
                    "result": {"$ref": "#/components/schemas/Eligibility"},
                    "researchSubjects": {"type": "object"},
                    "error": {"type": "string"},
                },
            }},
        },
    },
    "CdsCard": {
        "type": "object",
        "required": ["uuid", "summary", "indicator", "source"],
        "properties": {
            "uuid": {"type": "string"},
            "summary": {"type": "string", "maxLength": 139},
            "indicator": {"enum": ["info", "warning", "critical"]},
            "detail": {"type": "string"},
            "source": {"type": "object", "required": ["label"]},
            "links": {"type": "array", "items": {"type": "object"}},
        },
    },
}


def build_openapi(public_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document (servers point at PUBLIC_URL)."""
    notify_security: list[dict[str, list[str]]] = [{"notifySecret": []}]
    cds_security: list[dict[str, list[str]]] = [{"cdsJwt": []}]
    paths: dict[str, Any] = {
        "/healthz": {"get": {
            "summary": "Liveness", "operationId": "healthz", "security": [],
            "responses": {"200": _json("The process answers.", {"type": "object"})},
        }},
        "/readyz": {"get": {
            "summary": "Readiness: FHIR server, mappings, queue", "operationId": "readyz",
            "security": [],
            "responses": {
                "200": _json("Ready.", {"type": "object"}),
                "503": _json("Not ready; `checks` says why.", {"type": "object"}),
            },
        }},
        "/metrics": {"get": {
            "summary": "Prometheus metrics of every process (text format)",
            "operationId": "metrics",
            "responses": {"200": {"description": "Prometheus text exposition 0.0.4.",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}},
                          **_AUTH_ERRORS},
        }},
        "/openapi.json": {"get": {
            "summary": "This document", "operationId": "openapi",
            "responses": {"200": _json("OpenAPI 3.1 document.", {"type": "object"}),
                          **_AUTH_ERRORS},
        }},
        "/studies": {"get": {
            "summary": "The studies and their criteria", "operationId": "listStudies",
            "responses": {"200": _json("Studies.", {"type": "object"}), **_AUTH_ERRORS},
        }},
        "/patients/{patient}/eligibility": {"get": {
            "summary": "Evaluate one patient (never writes)", "operationId": "patientEligibility",
            "parameters": [
                _PATIENT_PARAM,
                {"name": "asOf", "in": "query", "schema": {"type": "string", "format": "date"}},
                {"name": "study", "in": "query", "style": "form", "explode": True,
                 "schema": {"type": "array", "items": {"type": "string"}}},
            ],
            "responses": {
                "200": _json("The evaluation.", {"$ref": "#/components/schemas/Eligibility"}),
                "400": _problem("Malformed id, date or unknown study."),
                **_AUTH_ERRORS,
                "404": _problem("No such patient."),
                "422": _problem("The record cannot be evaluated (e.g. not FHIR R4)."),
                **_FHIR_ERRORS,
            },
        }},
        "/screenings": {"post": {
            "summary": "Screen and write ResearchSubjects (batch job, or one patient with wait)",
            "operationId": "createScreening",
            "parameters": [{"name": "wait", "in": "query", "schema": {"type": "boolean"},
                            "description": "Screen one patient now and answer 200."}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["patients"], "additionalProperties": False,
                "properties": {
                    "patients": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    "studies": {"type": "array", "items": {"type": "string"}},
                    "asOf": {"type": "string", "format": "date"},
                },
            }}}},
            "responses": {
                "200": _json("Screened (wait=true).", {"$ref": "#/components/schemas/Screening"}),
                "202": _json("Job queued.", {"$ref": "#/components/schemas/Job"},
                             headers={"Location": {"schema": {"type": "string"}}}),
                "400": _problem("Malformed body."),
                **_AUTH_ERRORS,
                "404": _problem("No such patient (wait=true)."),
                "413": _problem("Body too large."),
                "422": _problem("The record cannot be evaluated (wait=true; e.g. not FHIR R4)."),
                **_FHIR_ERRORS,
            },
        }},
        "/screenings/{job}": {"get": {
            "summary": "A screening job's progress and results", "operationId": "getScreening",
            "description": (
                "The summary covers the whole job; `patients` holds at most 50 of them. "
                "When more follow, `next` (and a `Link: rel=\"next\"` header) gives the "
                "cursor of the next page."
            ),
            "parameters": [{"name": "job", "in": "path", "required": True,
                            "schema": {"type": "string"}},
                           {"name": "cursor", "in": "query", "required": False,
                            "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"}}],
            "responses": {
                "200": _json("The job.", {"$ref": "#/components/schemas/Job"}),
                "400": _problem("Malformed cursor."),
                **_AUTH_ERRORS,
                "404": _problem("No such job."),
            },
        }},
        "/webhooks/screening": {"post": {
            "summary": "Signed webhook: queue a screening of one patient",
            "operationId": "screeningWebhook",
            "description": (
                "Sign `{X-Timestamp}.{raw body}` with HMAC-SHA256 and WEBHOOK_SECRET; send "
                "`X-Signature: sha256=<hex>` and `X-Timestamp: <unix seconds>`; requests more "
                "than 5 minutes old or 30 seconds ahead are refused, and a signed request is "
                "accepted once (409 when sent again)."
            ),
            "parameters": [
                {"name": "X-Signature", "in": "header", "required": True,
                 "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"}},
                {"name": "X-Timestamp", "in": "header", "required": True,
                 "schema": {"type": "string", "pattern": "^[0-9]+$"}},
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["patient"],
                "properties": {"patient": {"type": "string"}}}}}},
            "responses": {
                "202": _json("Queued (or joined a queued screening).", {"type": "object"},
                             headers={"Location": {"schema": {"type": "string"}}}),
                "400": _problem("Malformed body or patient id."),
                "401": _problem("Missing API token, bad signature or stale timestamp."),
                "409": _problem("This signed request was already accepted (a replay)."),
                "413": _problem("Body too large."),
            },
        }},
        "/fhir-notify": {"post": {
            "summary": "FHIR rest-hook notification without payload", "operationId": "notifyEmpty",
            "security": notify_security,
            "requestBody": {"required": False, "content": {"application/fhir+json": {
                "schema": {"type": "object"}}}},
            "responses": {
                "200": _outcome("Acknowledged (informational)."),
                "400": _outcome("Malformed or non-R4 FHIR."),
                "401": _outcome("Missing or wrong notification secret."),
                "413": _outcome("Body too large, or a Bundle naming more than 100 patients "
                                 "(nothing queued)."),
            },
        }},
        "/fhir-notify/{rtype}/{rid}": {
            "parameters": [
                {"name": "rtype", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "Resource type of the changed resource."},
                {"name": "rid", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "Its logical id."},
            ],
            "put": {
                "summary": "FHIR rest-hook notification with the changed resource",
                "operationId": "notifyResource", "security": notify_security,
                "requestBody": {"required": True, "content": {"application/fhir+json": {
                    "schema": {"type": "object"}}}},
                "responses": {
                    "200": _outcome("Screening queued (or nothing to screen)."),
                    "400": _outcome("Malformed FHIR, an STU3/R5 resource, or id mismatch."),
                    "401": _outcome("Missing or wrong notification secret."),
                    "413": _outcome("Body too large."),
                },
            },
            "delete": {
                "summary": "FHIR rest-hook notification of a deletion (logged only)",
                "operationId": "notifyDeleted", "security": notify_security,
                "responses": {
                    "200": _outcome("Acknowledged."),
                    "400": _outcome("Not a resource type this service screens on."),
                    "401": _outcome("Missing or wrong notification secret."),
                },
            },
        },
        "/cds-services": {"get": {
            "summary": "CDS Hooks discovery", "operationId": "cdsDiscovery", "security": [],
            "responses": {"200": _json("The services and prefetch templates.",
                                       {"type": "object"})},
        }},
        "/cds-services/trial-eligibility": {"post": {
            "summary": "CDS Hooks patient-view: trial eligibility cards",
            "operationId": "cdsTrialEligibility", "security": cds_security,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["hook", "hookInstance", "context"]}}}},
            "responses": {
                "200": _json("Cards.", {"type": "object", "properties": {"cards": {
                    "type": "array", "items": {"$ref": "#/components/schemas/CdsCard"}}}}),
                "400": _problem("Malformed request."),
                "401": _problem("Missing or invalid JWT."),
                "412": _problem("Prefetch missing and the data cannot be fetched."),
                "413": _problem("Body too large."),
                "422": _problem("The record cannot be evaluated."),
            },
        }},
        "/cds-services/trial-eligibility/feedback": {"post": {
            "summary": "CDS Hooks card feedback (logged)", "operationId": "cdsFeedback",
            "security": cds_security,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["feedback"]}}}},
            "responses": {
                "200": _json("Accepted.", {"type": "object"}),
                "400": _problem("Malformed feedback."),
                "401": _problem("Missing or invalid JWT."),
            },
        }},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Trial eligibility service",
            "version": "0.1.0",
            "description": (
                "Screens FHIR R4 patient records against pediatric lupus CAR-T trials and "
                "writes ResearchSubjects. Errors are application/problem+json (RFC 9457)."
            ),
        },
        "servers": [{"url": public_url}],
        "security": [{"apiToken": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiToken": {"type": "http", "scheme": "bearer",
                             "description": "ELIGIBILITY_API_TOKEN (when configured)."},
                "notifySecret": {"type": "http", "scheme": "bearer",
                                 "description": "FHIR_NOTIFY_SECRET, sent in the "
                                 "Subscription's channel header."},
                "cdsJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "CDS Hooks client JWT (issuer in CDS_ISSUERS)."},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI document."""
    return jsonify(build_openapi(services().settings.public_url))
