"""Prometheus metrics of the service (docs/deployment.md "Monitoring"): names are a contract.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn sets one for its workers; compose shares one
between the web service and the queue workers) every process writes its figures to files
there and `GET /metrics` sums them; without it the figures are this process's own.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from service.core.metrics_files import MULTIPROC_ENV, process_identifier


def multiprocess_dir() -> str | None:
    """The directory shared by every process of the installation, when one is configured."""
    return os.environ.get(MULTIPROC_ENV) or None


if multiprocess_dir():
    # Chosen before any metric exists; the library's default names files by pid alone.
    values.ValueClass = values.MultiProcessValue(process_identifier)

_REGISTRY = CollectorRegistry(auto_describe=True)

SCREENINGS = Counter(
    "eligibility_screenings", "Screenings run, by what asked for them and how they ended.",
    ["trigger", "outcome"], registry=_REGISTRY,
)
WRITES = Counter(
    "eligibility_researchsubject_writes",
    "ResearchSubject write-back results per study screened with write-back.",
    ["result"], registry=_REGISTRY,
)
FHIR_SECONDS = Histogram(
    "eligibility_fhir_request_seconds",
    "Time of each HTTP request to the FHIR server (every attempt), by method.",
    ["method"], registry=_REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
FHIR_ERRORS = Counter(
    "eligibility_fhir_request_errors",
    "HTTP requests to the FHIR server that failed: no answer, or a 4xx/5xx status.",
    ["method", "kind"], registry=_REGISTRY,
)
SIGNIN_FAILURES = Counter(
    "eligibility_signin_failures",
    "Refused sign-ins to the coordinator pages: wrong-password, locked, oidc.",
    ["reason"], registry=_REGISTRY,
)
AUDIT_UNDELIVERED = Counter(
    "eligibility_audit_fhir_undelivered",
    "Audit entries whose FHIR AuditEvent could not be written (kept in the audit log).",
    registry=_REGISTRY,
)

# Every result and reason is exported from the start (at 0), so a rate or an alert on one
# that has not happened yet still finds its series.
for _result in ("created", "updated", "unchanged", "not-a-candidate"):
    WRITES.labels(result=_result)
for _reason in ("wrong-password", "locked", "oidc"):
    SIGNIN_FAILURES.labels(reason=_reason)

# What started the screenings of this request or task (set by the surface, read when counted).
_TRIGGER: contextvars.ContextVar[str | None] = contextvars.ContextVar("trigger", default=None)
# The process's own trigger when no surface set one (the CLI: its screening threads).
_DEFAULT_TRIGGER = ["other"]
TRIGGERS = ("api", "pages", "cds-hooks", "webhook", "fhir-notify", "cli", "bulk", "queue",
            "other")


def trigger_of(source: str) -> str:
    """The trigger label of a job source ("fhir-notify:Observation" -> "fhir-notify")."""
    family = source.split(":", 1)[0].strip().lower()
    return family if family in TRIGGERS else "other"


@contextmanager
def trigger(name: str) -> Iterator[None]:
    """Screenings inside the block count under this trigger."""
    token = _TRIGGER.set(trigger_of(name))
    try:
        yield
    finally:
        _TRIGGER.reset(token)


def set_default_trigger(name: str) -> None:
    """Screenings of this process count under `name` unless a surface says otherwise."""
    _DEFAULT_TRIGGER[0] = trigger_of(name)


def set_trigger(name: str) -> contextvars.Token[str | None]:
    """Set the trigger until reset (a request's before/teardown hooks)."""
    return _TRIGGER.set(trigger_of(name))


def reset_trigger(token: contextvars.Token[str | None]) -> None:
    """Undo set_trigger."""
    _TRIGGER.reset(token)


def count_screening(outcome: str) -> None:
    """One screening ended: `ok`, `temporary-error` (retried) or `failed`."""
    SCREENINGS.labels(trigger=_TRIGGER.get() or _DEFAULT_TRIGGER[0], outcome=outcome).inc()


def count_write_backs(results: Mapping[str, str]) -> None:
    """One screening's write-back results, study key -> created/updated/unchanged/..."""
    for result in results.values():
        WRITES.labels(result=result).inc()


def observe_fhir_request(method: str, seconds: float, error: str | None) -> None:
    """One HTTP request to the FHIR server took `seconds`; `error` names how it failed."""
    method = method.upper()
    FHIR_SECONDS.labels(method=method).observe(seconds)
    if error:
        FHIR_ERRORS.labels(method=method, kind=error).inc()


def count_signin_failure(reason: str) -> None:
    """A sign-in was refused: `wrong-password`, `locked` (refused unchecked) or `oidc`."""
    SIGNIN_FAILURES.labels(reason=reason).inc()


def count_audit_undelivered() -> None:
    """An AuditEvent could not be written to the FHIR server."""
    AUDIT_UNDELIVERED.inc()


class _Gauge:
    """A gauge read at scrape time (the queue's backlog: the store knows, not the process)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self.name, self.documentation, self.read = name, documentation, read

    def collect(self) -> Iterable[Any]:
        family = GaugeMetricFamily(self.name, self.documentation)
        family.add_metric([], self.read())
        yield family


class _Own:
    """This process's metrics (no multiprocess directory)."""

    def collect(self) -> Iterable[Any]:
        return _REGISTRY.collect()


def exposition(queue_pending: Callable[[], float]) -> tuple[bytes, str]:
    """The text exposition of every process's metrics plus the queue backlog; content type."""
    registry = CollectorRegistry(auto_describe=False)
    folder = multiprocess_dir()
    if folder:
        MultiProcessCollector(registry, path=folder)
    else:
        registry.register(_Own())
    registry.register(_Gauge(
        "eligibility_queue_pending",
        "Screening tasks queued or running (not finished), read from the job store.",
        queue_pending,
    ))
    return generate_latest(registry), CONTENT_TYPE_LATEST
