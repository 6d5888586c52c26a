"""What every page shares: security headers (strict CSP), the study menu, HTML error pages."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, render_template, request
from flask_babel import gettext, lazy_gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from service.fhir.errors import FhirError, FhirNotFound
from service.web.pages import bp, pages
from service.web.problems import Problem, problem_response
from service.web.services import services

log = logging.getLogger(__name__)

_HEADINGS = {
    400: (lazy_gettext("Bad request"), lazy_gettext("The form was not filled in as expected.")),
    401: (lazy_gettext("Please sign in"), lazy_gettext("Sign in to continue.")),
    403: (lazy_gettext("Not allowed"),
          lazy_gettext("Your role does not allow this: viewers can read but not change.")),
    404: (lazy_gettext("Not found"), lazy_gettext("There is no such page, patient or study.")),
    405: (lazy_gettext("Not allowed"), lazy_gettext("This address does not accept that request.")),
    413: (lazy_gettext("Too large"),
          lazy_gettext("What was sent is larger than the service accepts.")),
}


@bp.app_context_processor
def _menu() -> dict[str, Any]:
    def nav_studies() -> list[tuple[str, str]]:
        try:
            return [(k, s.title) for k, s in services().screener.mappings.studies.items()]
        except Exception:  # a page must render even when the screener is a test fake
            return []

    return {"nav_studies": nav_studies}


@bp.after_request
def _headers(response: Response) -> Response:
    ancestors = pages().settings.frame_ancestors
    # No script at all: every page works without JavaScript. Inline SVG uses attributes only.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        f"base-uri 'none'; frame-ancestors {ancestors}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if request.endpoint != "pages.static":
        # Pages show patient data: never kept by the browser or a proxy.
        response.headers["Cache-Control"] = "no-store"
    legacy = {"'none'": "DENY", "'self'": "SAMEORIGIN"}.get(ancestors.strip())
    if legacy:  # browsers without CSP frame-ancestors
        response.headers["X-Frame-Options"] = legacy
    return response


def _page(code: int, message: Any = None) -> tuple[str, int]:
    heading, default = _HEADINGS.get(
        code, (lazy_gettext("Something went wrong"), lazy_gettext("Please try again.")))
    return render_template("error.html", code=code, heading=heading,
                           message=message or default), code


@bp.errorhandler(CSRFError)
def _csrf(exc: CSRFError) -> Any:
    return _page(400, gettext("The form expired or did not come from this site: reload the "
                              "page and try again."))


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> Any:
    message = exc.description if exc.code == 400 and exc.description else None
    if exc.code == 400 and message and message.startswith("The browser"):
        message = None  # werkzeug's generic text
    return _page(exc.code or 500, message)


@bp.errorhandler(FhirNotFound)
def _not_found(exc: Exception) -> Any:
    return _page(404)


@bp.errorhandler(FhirError)
def _fhir(exc: FhirError) -> Any:
    # The FHIR server's message may quote records: never shown, never logged.
    log.warning("FHIR server error on a page: %s (HTTP %s)", type(exc).__name__,
                getattr(exc, "status", None))
    heading = gettext("The FHIR server did not answer as expected")
    return render_template("error.html", code=503, heading=heading,
                           message=gettext("Nothing was changed. Please try again in a moment.")
                           ), 503


@bp.errorhandler(Problem)
def _problem(exc: Problem) -> Any:
    # Raised before any page code (a host name that is not ours): the app's problem answer.
    return problem_response(exc)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Any:
    log.exception("unexpected error on a page (%s)", type(exc).__name__)
    return _page(500)
