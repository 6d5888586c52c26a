"""Parsing and validating what clients send: patient ids, dates, study keys, JSON bodies."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import Any

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from service.core.dates import calendar_date
from service.fhir.ids import normalize_patient_id
from service.web.problems import Problem


def patient_id(value: Any, *, field: str = "patient") -> str:
    """A FHIR logical id from '123' or 'Patient/123'; 400 problem otherwise (before any I/O)."""
    try:
        return normalize_patient_id(value)
    except ValueError:
        raise Problem(
            400,
            f"{field} must be a FHIR Patient id: 1-64 letters, digits, '-' or '.', "
            "optionally prefixed with 'Patient/'.",
            slug="invalid-patient-id",
        ) from None


def as_of(value: str | None, *, field: str = "asOf") -> date | None:
    """An ISO date (YYYY-MM-DD) or None; 400 problem when malformed."""
    if value is None or value == "":
        return None
    try:
        return calendar_date(value)
    except ValueError:
        raise Problem(400, f"{field} must be a date YYYY-MM-DD.", slug="invalid-date") from None


def study_keys(values: Iterable[Any], known: Iterable[str]) -> tuple[str, ...] | None:
    """Requested study keys (None = all); 400 problem naming the unknown one."""
    wanted = [v for v in values]
    if not wanted:
        return None
    known = tuple(known)
    for value in wanted:
        if not isinstance(value, str) or value not in known:
            raise Problem(
                400, f"unknown study {str(value)[:64]!r}; known: {', '.join(known)}.",
                slug="unknown-study",
            )
    return tuple(dict.fromkeys(wanted))


def raw_body() -> bytes:
    """The request body; 413 when it is over MAX_BODY_BYTES, declared or streamed (chunked)."""
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    # Werkzeug cuts a streamed body at the limit without an error (a declared length over it
    # raises above); one that reached the limit may have been cut, so it is refused too.
    if request.content_length is None and limit is not None and len(raw) >= limit:
        raise RequestEntityTooLarge()
    return raw


def is_json_type(mimetype: str) -> bool:
    """application/json or any application/*+json (application/fhir+json...)."""
    kind = (mimetype or "").lower()
    return kind == "application/json" or (kind.startswith("application/")
                                          and kind.endswith("+json"))


def json_body(*, required: bool = True) -> Any:
    """The request body parsed as JSON; 400 problem when it is not JSON."""
    raw = raw_body()
    if raw.strip() and not is_json_type(request.mimetype):
        # A form or text/plain body is what any website can make a browser send without
        # asking (no CORS preflight): only a JSON content type is read as JSON.
        raise Problem(415, "The body must be sent as Content-Type: application/json.",
                      slug="unsupported-media-type")
    if not raw.strip():
        if required:
            raise Problem(400, "The request body must be a JSON document.", slug="invalid-body")
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nesting deeper than the parser's stack ([[[[...]]]]).
        raise Problem(400, "The request body is not valid JSON (or is nested too deeply).",
                      slug="invalid-body") from None


def flag(value: str | None) -> bool:
    """A boolean query parameter (true/1/yes)."""
    return (value or "").strip().lower() in ("1", "true", "yes")
