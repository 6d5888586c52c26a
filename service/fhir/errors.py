"""FHIR errors as a tree (`retryable` says whether trying again later can help), and the
reading of a server's error answer into one of them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


class FhirError(Exception):
    """A FHIR interaction failed; the message comes from the server's OperationOutcome."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        outcome: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.outcome = outcome


class FhirTemporaryError(FhirError):
    """Retrying later may help: transport failure, 408, 429 or 5xx."""

    retryable = True


class FhirFatalError(FhirError):
    """Retrying the same request will not help."""


class FhirNotFound(FhirFatalError):
    """The resource does not exist (404) or was deleted (410)."""


class FhirAuthError(FhirFatalError):
    """The server or its authorization server refused our credentials (401/403)."""


class FhirConflict(FhirFatalError):
    """A version conflict or a conditional operation that matched several resources."""


class FhirProtocolError(FhirFatalError):
    """The server's answer is not the FHIR it should be (HTML, invalid JSON, wrong Bundle)."""


class FhirRecordTooLarge(FhirFatalError):
    """A search needs more pages or resources than allowed; never returned truncated."""


def failed_outcome(body: Any) -> bool:
    """Whether a value is an OperationOutcome saying something failed (severity error/fatal).

    Inside a 200 answer (a searchset entry, a batch entry's response.outcome) it means the
    search or read did not run: taking the rest of the answer as "no data" would be wrong.
    """
    if not isinstance(body, Mapping) or body.get("resourceType") != "OperationOutcome":
        return False
    return any(isinstance(i, Mapping) and i.get("severity") in ("error", "fatal")
               for i in body.get("issue") or ())


def outcome_message(body: Any) -> str | None:
    """The human-readable text of an OperationOutcome (most severe issues first)."""
    if not isinstance(body, Mapping) or body.get("resourceType") != "OperationOutcome":
        return None
    order = {"fatal": 0, "error": 1, "warning": 2, "information": 3}
    issues = [i for i in body.get("issue") or () if isinstance(i, Mapping)]
    issues.sort(key=lambda i: order.get(str(i.get("severity")), 4))
    texts = []
    for issue in issues:
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
        text = text or issue.get("code")
        if isinstance(text, str) and text.strip() and text.strip() not in texts:
            texts.append(text.strip())
    if not texts:
        return None
    message = "; ".join(texts)
    return message if len(message) <= 500 else message[:497] + "..."


def status_of(entry_status: Any) -> int | None:
    """The code of a Bundle entry status."""
    # Bundle entry statuses look like "200 OK" (HAPI) or "200" (others).
    match = re.match(r"\s*(\d{3})", str(entry_status or ""))
    return int(match.group(1)) if match else None


def error_class(status: int) -> type[FhirError]:
    """The error class of an HTTP status: temporary (retry may help) or fatal."""
    if status in (404, 410):
        return FhirNotFound
    if status in (401, 403):
        return FhirAuthError
    if status in (409, 412):
        return FhirConflict
    if status in (408, 429) or status >= 500:
        return FhirTemporaryError
    return FhirFatalError
