"""gunicorn settings: refuse a non-loopback bind without ELIGIBILITY_API_TOKEN; metric files."""

from __future__ import annotations

import os
import sys
import tempfile

from service.core.metrics_files import MULTIPROC_ENV, mark_dead, prepare_directory
from service.core.settings import Settings, SettingsError, is_loopback

bind = [os.environ.get("BIND", "127.0.0.1:8000")]
# The embedded SQLite queue is one process with worker threads; scale threads, or use Redis
# (QUEUE_URL=redis://...) with `eligibility worker` processes and more gunicorn workers.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 120
accesslog = "-"
# The request id (X-Request-ID of the answer) ties an access line to the service's own lines.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms [%({x-request-id}o)s]'


def bind_host(address: str) -> str:
    """The host part of a gunicorn bind address ('[::1]:8000', '0.0.0.0:80', 'localhost')."""
    if address.startswith("["):
        return address[1 : address.index("]")]
    if address.count(":") == 1:
        return address.split(":", 1)[0]
    return address


def on_starting(server: object) -> None:
    """Check the settings once before any worker starts (one clear line, exit 2)."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"eligibility: bad settings: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    # Metrics from every worker: each writes its figures to files in one directory that
    # GET /metrics sums (prometheus_client multiprocess mode). Workers inherit the variable.
    if not os.environ.get(MULTIPROC_ENV):
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="eligibility-metrics-")
    prepare_directory(os.environ[MULTIPROC_ENV])
    for address in server.cfg.bind:  # type: ignore[attr-defined]
        if address.startswith(("unix:", "fd://")):
            continue
        if not settings.api_tokens and not is_loopback(bind_host(address)):
            print(f"eligibility: refusing to listen on {address} without ELIGIBILITY_API_TOKEN",
                  file=sys.stderr)
            raise SystemExit(2)


def child_exit(server: object, worker: object) -> None:
    """A worker exited: its live gauges leave the sums (its counters' totals stay)."""
    mark_dead(worker.pid)  # type: ignore[attr-defined]
