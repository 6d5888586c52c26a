"""Fetch-only floor: the FHIR requests of `eligibility screen --all`, without evaluation or write.

Run as a subprocess by the population benchmark, configured from the environment like the CLI:
    FHIR_BASE_URL=... python -m tests.benchmarks.floor --workers 2
It lists the patients the way `screen --every-patient` does, then per patient sends the same read
batch a screening sends (record searches plus the ResearchSubject lookup), from the same thread
pool, and prints the same progress lines, so the two runs differ only by evaluation and write-back.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from service.cli.progress import ScreeningProgress
from service.core.settings import Settings
from service.fhir.candidates import every_patient_id
from service.fhir.client import FhirClient
from service.fhir.queries import record_queries
from service.fhir.record_read import record_resources
from service.mappings import load_mappings


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch every patient's record once; exit 0 when all reads succeeded."""
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.floor")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    mappings = load_mappings(settings.mappings_dir)
    codes = mappings.observation_codes()
    keys = list(mappings.studies)
    client = FhirClient(settings)
    ids = list(every_patient_id(client, page_size=settings.fhir_page_size))

    def fetch(pid: str) -> int:
        queries = record_queries(
            pid, codes, page_size=settings.fhir_page_size, research_subject_studies=keys
        )
        return len(record_resources(client.run_queries(queries)))

    progress = ScreeningProgress(len(ids), what="screened")
    failures = 0
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        for future in as_completed([pool.submit(fetch, pid) for pid in ids]):
            if future.exception() is not None:
                failures += 1
            progress.step(failed=future.exception() is not None)
    print(f"{len(ids)} patient(s) fetched, {failures} error(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
