"""Metric files at start (docs/deployment.md "Monitoring"): only this host's files of processes
that are gone are removed; a live process's files (a queue worker beside gunicorn) and other
hosts' files (another container on the shared volume) stay."""

from __future__ import annotations

import os
import subprocess
import sys

from service.core.metrics_files import prepare_directory, process_identifier


def test_only_this_hosts_dead_processes_files_are_removed(tmp_path):
    host = process_identifier().rsplit("-", 1)[0]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    files = {
        "dead": tmp_path / f"counter_{host}-{gone}.db",
        "alive": tmp_path / f"counter_{host}-{os.getpid()}.db",
        "other host": tmp_path / f"counter_{host}x-{gone}.db",
        "other container": tmp_path / f"histogram_0a1b2c3d4e5f-{gone}.db",
    }
    for path in files.values():
        path.write_bytes(b"x")
    prepare_directory(str(tmp_path))
    assert not files["dead"].exists()
    assert all(files[k].exists() for k in ("alive", "other host", "other container"))
