"""When the FHIR client tries a request again: backoff, Retry-After, and what is safe to resend."""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Mapping
from typing import Any

import requests
import urllib3

# Exponential backoff: 0.5 s, 1 s, 2 s, ... capped, with full jitter so workers spread out.
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
# A server asking us to wait longer than this gets a temporary error instead of a blocked
# worker; the error carries retry_after so the job queue (or a 503 answer) can pass it on.
MAX_RETRY_AFTER_SECONDS = 60.0
TRANSPORT_ERRORS = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def never_sent(exc: Exception) -> bool:
    """Whether the request surely did not reach the server (safe to retry even a POST)."""
    # True when the request surely did not reach the server (safe to retry even a POST).
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError) or isinstance(
        exc.args[0] if exc.args else None, urllib3.exceptions.NewConnectionError
    )


def idempotent_bundle(bundle: Mapping[str, Any]) -> bool:
    """Whether resending the whole Bundle cannot create anything twice."""
    for entry in bundle.get("entry") or ():
        request = entry.get("request") or {}
        method = str(request.get("method", "")).upper()
        if method == "POST" and not request.get("ifNoneExist"):
            return False
        if method not in ("GET", "HEAD", "PUT", "DELETE", "POST"):
            return False
    return True


def backoff_delay(attempt: int, retry_after: float | None, jitter: Callable[[], float]
                  ) -> float | None:
    """Seconds before retry number `attempt` + 1, or None when the server asks for too long."""
    if retry_after is not None:
        if retry_after > MAX_RETRY_AFTER_SECONDS:
            return None
        return retry_after
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2**attempt))
    return ceiling * jitter()
