"""Why a screening could not be done: every known failure classified once, for every surface."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from service.core.metrics import count_screening
from service.fhir import research_subject as rs
from service.fhir.errors import FhirError, FhirNotFound


class ScreeningFailure(Exception):
    """A screening that could not be done, classified once for every surface.

    `kind` is one of not-found, unavailable (retrying later may help), fhir-error, record
    (this patient's record cannot be evaluated) or write-back. `reason` is public: it never
    quotes the FHIR server's own message, which may quote other patients' records.
    """

    def __init__(
        self,
        kind: str,
        reason: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


def classify_failure(exc: BaseException) -> ScreeningFailure | None:
    """The ScreeningFailure an exception means, or None when it is a bug (not a known failure)."""
    from service.engine.record import RecordError

    if isinstance(exc, ScreeningFailure):
        return exc
    if isinstance(exc, FhirNotFound):
        return ScreeningFailure("not-found", "patient not found on the FHIR server",
                                status=exc.status)
    if isinstance(exc, FhirError):
        if exc.status is not None:
            # The server's own message may quote records: give its status only.
            reason = f"the FHIR server answered HTTP {exc.status} ({type(exc).__name__})"
        else:  # errors of our own making (transport, paging, oversized record): no status
            reason = _first_line(exc)
        return ScreeningFailure(
            "unavailable" if exc.retryable else "fhir-error", reason,
            retryable=exc.retryable, retry_after=exc.retry_after, status=exc.status,
        )
    if isinstance(exc, RecordError):
        # No Patient, STU3/R5 data: the message is about this patient's own record.
        return ScreeningFailure("record", _first_line(exc))
    if isinstance(exc, rs.WriteBackError):
        return ScreeningFailure("write-back", _first_line(exc))
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


# Nested blocks (bulk's conflict re-read runs a screening inside one) count once: the outer.
_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("screening_depth", default=0)


@contextmanager
def failures_classified() -> Iterator[None]:
    """Turn the known failures of a screening into ScreeningFailure; let bugs through.

    Every screening runs inside one: its end is counted here (eligibility_screenings_total,
    outcome `ok`, the failure's kind, or `error` for a bug), under the surface's trigger.
    """
    depth = _DEPTH.get()
    token = _DEPTH.set(depth + 1)
    outcome = "ok"
    try:
        yield
    except ScreeningFailure as known:
        outcome = known.kind
        raise
    except Exception as exc:
        failure = classify_failure(exc)
        if failure is None:
            outcome = "error"
            raise
        outcome = failure.kind
        raise failure from exc
    finally:
        _DEPTH.reset(token)
        if depth == 0:
            count_screening(outcome)
