"""FHIR errors as a tree: `retryable` says whether trying again later can help."""

from __future__ import annotations

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
