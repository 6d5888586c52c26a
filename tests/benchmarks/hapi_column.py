"""The benchmark's HAPI column (`--hapi`): round trips and per-patient latency on real HAPI.

The same measurements as against the local server, on the HAPI FHIR JPA server of hapi/
(HAPI 8.4.0, H2 in memory, started here on a free loopback port): the figures then say what a
screening costs on the server hospitals run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from service.fhir.client import FhirClient
from service.mappings import Mappings
from service.screening import ensure_research_studies, screen_patient
from service.seeding import load_seeds
from tests.benchmarks import fhir_server as bench_fhir
from tests.benchmarks import synthetic
from tests.benchmarks.roundtrips import run_roundtrips
from tests.support import hapi_server


def screening_latency(base_url: str, mappings: Mappings, patient_ids: Sequence[str],
                      reps: int = 3) -> dict[str, Any]:
    """Per-patient wall time of a screening with write-back whose result is unchanged (the
    nightly re-screen: read batch, evaluation, compare) and of a read-only screening, in ms."""
    client = FhirClient(bench_fhir.settings_for(base_url))
    refs = ensure_research_studies(client, mappings, synthetic.SEEDS_DIR)
    for pid in patient_ids:  # first screenings: write the ResearchSubjects once
        screen_patient(client, mappings, pid, as_of=synthetic.AS_OF, write=True,
                       research_studies=refs)
    rescreen: list[float] = []
    read_only: list[float] = []
    for _ in range(reps):
        for pid in patient_ids:
            started = time.perf_counter()
            screen_patient(client, mappings, pid, as_of=synthetic.AS_OF, write=True,
                           research_studies=refs)
            rescreen.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            screen_patient(client, mappings, pid, as_of=synthetic.AS_OF, write=False,
                           research_studies=refs)
            read_only.append((time.perf_counter() - started) * 1000)
    return {"patients": len(patient_ids), "reps": reps,
            "rescreen_p50_ms": round(statistics.median(rescreen), 2),
            "read_only_p50_ms": round(statistics.median(read_only), 2)}


def run_hapi(mappings: Mappings, patient_ids: Sequence[str], *, heavy_years: int,
             log: Callable[[str], None]) -> dict[str, Any]:
    """Build and start hapi/, load the seeds and a heavy record, measure, stop it."""
    log("HAPI: building hapi/ (once) and starting it ...")
    hapi_server.build()
    started = time.perf_counter()
    server = hapi_server.start()
    start_seconds = round(time.perf_counter() - started, 1)
    try:
        client = FhirClient(bench_fhir.settings_for(server.base_url, fhir_timeout=600))
        load_seeds(client, synthetic.SEEDS_DIR, mappings=mappings)
        heavy_id = bench_fhir.load_population(
            client, [synthetic.heavy_record(years=heavy_years)])[1][0]
        log("HAPI: round trips (seed patients, naive baseline, heavy record) ...")
        figures = run_roundtrips(server.base_url, mappings, patient_ids, heavy_id=heavy_id)
        log("HAPI: per-patient screening latency ...")
        figures["latency"] = screening_latency(server.base_url, mappings, patient_ids)
        figures["start_seconds"] = start_seconds
        return figures
    finally:
        server.stop()


def rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) lines comparing the local server with HAPI, for the printed table."""
    hapi, local = f["hapi"], f["roundtrips"]
    ours = hapi["ours"]
    lat_h, lat_l = hapi["latency"], f["screening_latency"]
    return [
        (f"4 On HAPI 8.4.0 (hapi/, H2; started in {hapi['start_seconds']} s):", ""),
        ("  round trips, first screening / re-screen",
         f"{ours['reads']} read + {ours['writes']} write / {ours['rescreen_reads']} read + "
         f"{ours['rescreen_writes']} write"),
        ("  most reads, seed patients", str(hapi["max_reads_any_patient"])),
        ("  heavy record (paged, _count 500 / 1000)",
         f"{hapi['heavy']['reads']} / {hapi['heavy']['reads_page_size_1000']} reads "
         f"(local: {local['heavy']['reads']} / {local['heavy']['reads_page_size_1000']})"),
        ("  read batch ours / naive (median)",
         f"{hapi['read_ms']['ours']} ms / {hapi['read_ms']['naive']} ms "
         f"(local: {local['read_ms']['ours']} / {local['read_ms']['naive']} ms)"),
        ("  per-patient re-screen / read-only (median)",
         f"{lat_h['rescreen_p50_ms']} / {lat_h['read_only_p50_ms']} ms "
         f"(local: {lat_l['rescreen_p50_ms']} / {lat_l['read_only_p50_ms']} ms)"),
    ]
