"""The metric files of multiprocess mode: their names, a clean start, a dead worker's gauges.

Kept apart from service.core.metrics so gunicorn's master prepares the directory without
creating metrics (and files) of its own.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def process_identifier() -> str:
    """This process's name in the metric files: host and pid (the compose services share a
    directory on a volume, and two containers can run processes with the same pid)."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}"


def _host() -> str:
    return process_identifier().rsplit("-", 1)[0]


def prepare_directory(folder: str) -> None:
    """At start: create the directory and drop this host's files of processes that are gone
    (an earlier run); live processes' files (a queue worker beside gunicorn) and other hosts'
    files (the queue workers' containers) stay."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    mine = re.compile(rf"_{re.escape(_host())}-(\d+)\.db$")
    for stale in path.glob("*.db"):
        found = mine.search(stale.name)
        if found and not _alive(int(found.group(1))):
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def mark_dead(pid: int) -> None:
    """A gunicorn worker exited: drop its live-gauge files (counters keep their totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(f"{_host()}-{pid}")
