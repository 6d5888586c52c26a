"""A queue worker process for the kill tests: its screener logs to a file and may block."""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from service.core.settings import Settings
from service.queue.jobs import JobQueue


class FileScreener:
    """Writes 'start ID' / 'done ID' lines; in block mode never finishes a screening."""

    def __init__(self, log: Path, block: bool) -> None:
        self.log, self.block = log, block

    def _write(self, line: str) -> None:
        with self.log.open("a") as handle:
            handle.write(line + "\n")

    def screen(self, patient_id: str, *, as_of: date, studies: Any) -> dict[str, Any]:
        self._write(f"start {patient_id}")
        if self.block:
            time.sleep(3600)
        self._write(f"done {patient_id}")
        return {"result": {"patient": f"Patient/{patient_id}"},
                "researchSubjects": {"study": f"ResearchSubject/study-{patient_id}"}}


if __name__ == "__main__":
    queue_url, log, mode, lease = sys.argv[1:5]
    settings = Settings().with_overrides(
        queue_url=queue_url, job_lease_seconds=float(lease), coalesce_seconds=0.0
    )
    JobQueue(settings, FileScreener(Path(log), mode == "block")).run_worker(1)
