"""RFC 9457 problem details: the one error shape of the HTTP API, and the mapping of FHIR errors."""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# Problem types are URNs: stable identifiers that need no documentation server.
TYPE_PREFIX = "urn:trial-eligibility:problem:"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    421: "Misdirected request",
    422: "Unprocessable content",
    500: "Internal server error",
    502: "FHIR server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """An error answered as application/problem+json; raise it from any view."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.title = title or TITLES.get(status, "Error")
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        self.extensions = extensions

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_PREFIX + self.slug if self.slug else "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extensions)
        return body


def problem_response(problem: Problem) -> Response:
    """Render a Problem with its status, content type and headers."""
    response = Response(
        json.dumps(problem.to_json()), status=problem.status, mimetype=PROBLEM_JSON
    )
    for name, value in problem.headers.items():
        response.headers[name] = value
    if problem.retry_after is not None:
        response.headers["Retry-After"] = str(problem.retry_after)
    if problem.status == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = 'Bearer realm="trial-eligibility"'
    return response


def problem_from_fhir_error(exc: Exception, *, patient_id: str | None = None) -> Problem:
    """Map FhirNotFound -> 404, FhirTemporaryError -> 503 + Retry-After, other FhirError -> 502."""
    from service.fhir.errors import FhirNotFound, FhirTemporaryError

    if isinstance(exc, FhirNotFound):
        what = f"Patient/{patient_id}" if patient_id else "The resource"
        return Problem(404, f"{what} was not found on the FHIR server.", slug="not-found")
    if isinstance(exc, FhirTemporaryError):
        return Problem(
            503,
            "The FHIR server is unreachable or temporarily failing; retry later.",
            slug="fhir-unavailable",
            retry_after=retry_after_seconds(exc),
        )
    # The FHIR server's own message may quote other records: neither answered nor logged.
    log.warning("FHIR server error %s (HTTP %s)", type(exc).__name__, getattr(exc, "status", None))
    return Problem(502, "The FHIR server refused or failed the request.", slug="fhir-error")


def problem_from_failure(failure: Any, *, patient_id: str) -> Problem:
    """Render a ScreeningFailure (classified once, in service.usecases.screening) as a problem."""
    if failure.kind == "not-found":
        return Problem(404, f"Patient/{patient_id} was not found on the FHIR server.",
                       slug="not-found")
    if failure.kind == "unavailable":
        return Problem(
            503,
            "The FHIR server is unreachable or temporarily failing; retry later.",
            slug="fhir-unavailable",
            retry_after=retry_after_seconds(failure),
        )
    if failure.kind == "record":
        log.warning("record of Patient/%s cannot be evaluated: %s", patient_id,
                    failure.reason[:200])
        return Problem(422, f"Patient/{patient_id} cannot be evaluated: {failure.reason}",
                       slug="record-not-evaluable")
    if failure.kind == "write-back":
        log.warning("write-back for Patient/%s failed: %s", patient_id, failure.reason[:200])
        return Problem(502, "The FHIR server did not accept the ResearchSubject write-back.",
                       slug="write-back-failed")
    log.warning("FHIR server error for Patient/%s: %s", patient_id, failure.reason)
    return Problem(502, "The FHIR server refused or failed the request.", slug="fhir-error")


def retry_after_seconds(exc: Exception, default: int = 30) -> int:
    """Seconds to advertise in Retry-After (the server's own hint when the error carries one)."""
    hint = getattr(exc, "retry_after", None)
    if isinstance(hint, int | float) and hint > 0 and math.isfinite(hint):
        return max(1, math.ceil(hint))
    return default


def register_error_handlers(app: Flask) -> None:
    """Answer every error, including Flask's own and unexpected ones, as problem+json."""
    from service.fhir.errors import FhirError

    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return problem_response(exc)

    @app.errorhandler(FhirError)
    def _fhir(exc: Exception) -> Response:
        return problem_response(problem_from_fhir_error(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        detail = {
            404: "No such endpoint.",
            405: "This endpoint does not accept this method.",
            413: f"The request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes.",
        }.get(status, exc.description or TITLES.get(status, "Error"))
        problem = Problem(status, detail, slug=f"http-{status}")
        response = problem_response(problem)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Never a stack trace in the answer; the log has it (ids only, per the house rules).
        log.exception("unexpected error")
        return problem_response(Problem(500, "An unexpected error occurred.", slug="internal"))
