"""FHIR errors as a tree: `retryable` says whether trying again later can help."""

from __future__ import annotations

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
