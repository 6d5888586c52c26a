"""Run a command; write its peak RSS (KiB) and CPU seconds (wait4) to a file; exit as it did.

    python -m tests.benchmarks.rss OUT_FILE COMMAND [ARGS...]

Why a separate small process: on Linux a child's ru_maxrss starts from the RSS of the process
that forked it (exec keeps the old high-water mark), so a child of the big benchmark process
would report the benchmark's memory. Forked from this small launcher instead, the figure is
the command's own peak (or this launcher's ~10 MB, far below any CLI run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def main() -> int:
    """Spawn the command with this process's stdio, wait4 it, record ru_maxrss and CPU time."""
    if len(sys.argv) < 3:
        print("usage: python -m tests.benchmarks.rss OUT_FILE COMMAND [ARGS...]", file=sys.stderr)
        return 2
    out, command = Path(sys.argv[1]), sys.argv[2:]
    child = subprocess.Popen(command)
    # The benchmark samples the command's CPU time by pid while it runs.
    print(f"bench-rss: pid {child.pid}", file=sys.stderr, flush=True)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    out.write_text(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime:.3f}\n")
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
