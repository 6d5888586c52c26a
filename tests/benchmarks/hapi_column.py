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
from service.usecases.screening import ensure_research_studies, screen_patient
from service.usecases.seeding import load_seeds
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


# Every figure of the HAPI column (dotted paths under "hapi"); the hapi smoke test checks them.
FIGURE_KEYS: tuple[str, ...] = (
    "hapi.start_seconds", "hapi.java_opts",
    "hapi.ours.reads", "hapi.ours.writes", "hapi.ours.rescreen_reads", "hapi.ours.rescreen_writes",
    "hapi.naive.reads", "hapi.naive.writes", "hapi.max_reads_any_patient",
    "hapi.heavy.reads", "hapi.heavy.reads_page_size_1000", "hapi.heavy.resources",
    "hapi.read_ms.ours", "hapi.read_ms.naive",
    "hapi.latency.rescreen_p50_ms", "hapi.latency.read_only_p50_ms",
)
# The JVM's own defaults (full tiered JIT, its default collector), as a server started without
# start-up tuning runs: the test tier's options (C1 only, serial GC) halve HAPI's start but slow
# every request once it runs. The heap stays bounded on a shared machine.
BENCH_JAVA_OPTS: tuple[str, ...] = ("-Xmx1g",)
BENCH_START_TIMEOUT = 600.0  # the full JIT starts more slowly, and the cores are shared


def measure(base_url: str, mappings: Mappings, patient_ids: Sequence[str], *, heavy_years: int,
            log: Callable[[str], None], reps: int = 3) -> dict[str, Any]:
    """Round trips and latency on a running HAPI whose `patient_ids` are loaded: loads a heavy
    record of `heavy_years` years, then measures as against the local server."""
    client = FhirClient(bench_fhir.settings_for(base_url, fhir_timeout=600))
    heavy = synthetic.heavy_record(years=heavy_years)
    heavy_id = bench_fhir.load_population(client, [heavy])[1][0]
    log("HAPI: round trips (seed patients, naive baseline, heavy record) ...")
    figures = run_roundtrips(base_url, mappings, patient_ids, heavy_id=heavy_id)
    figures["heavy"]["resources"] = len(heavy)
    log("HAPI: per-patient screening latency ...")
    figures["latency"] = screening_latency(base_url, mappings, patient_ids, reps=reps)
    return figures


def run_hapi(mappings: Mappings, patient_ids: Sequence[str], *, heavy_years: int,
             log: Callable[[str], None]) -> dict[str, Any]:
    """Build and start hapi/, load the seeds, measure, stop it."""
    log("HAPI: building hapi/ (once) and starting it ...")
    hapi_server.build()
    server = hapi_server.start(timeout=BENCH_START_TIMEOUT, java_opts=BENCH_JAVA_OPTS)
    try:
        client = FhirClient(bench_fhir.settings_for(server.base_url, fhir_timeout=600))
        load_seeds(client, synthetic.SEEDS_DIR, mappings=mappings)
        figures = measure(server.base_url, mappings, patient_ids, heavy_years=heavy_years,
                          log=log)
        figures["start_seconds"] = server.ready_seconds
        figures["java_opts"] = " ".join(BENCH_JAVA_OPTS)
        return figures
    finally:
        server.stop()


def _ms(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) lines of the HAPI column, each beside the local server's figure of the
    same run when the run has one (`roundtrips`, `screening_latency`)."""
    hapi = f["hapi"]
    ours, heavy, read_ms, lat = hapi["ours"], hapi["heavy"], hapi["read_ms"], hapi["latency"]
    local, lat_l = f.get("roundtrips"), f.get("screening_latency")
    heavy_l = (f" (local: {local['heavy']['reads']} / {local['heavy']['reads_page_size_1000']})"
               if local and "heavy" in local else "")
    read_l = (f" (local: {_ms(local['read_ms']['ours'])} / {_ms(local['read_ms']['naive'])} ms)"
              if local else "")
    lat_l_text = (f" (local: {_ms(lat_l['rescreen_p50_ms'])} / "
                  f"{_ms(lat_l['read_only_p50_ms'])} ms)" if lat_l else "")
    return [
        (f"8 On HAPI 8.4.0 (hapi/, H2, {hapi['java_opts']}; ready after "
         f"{hapi['start_seconds']} s):", ""),
        ("  round trips, first screening / re-screen",
         f"{ours['reads']} read + {ours['writes']} write / {ours['rescreen_reads']} read + "
         f"{ours['rescreen_writes']} write"),
        ("  naive baseline", f"{hapi['naive']['reads']} read + {hapi['naive']['writes']} write"),
        (f"  most reads, {hapi['patients_checked']} patients", str(hapi["max_reads_any_patient"])),
        (f"  heavy record ({heavy['resources']} resources, _count {heavy['page_size']} / 1000)",
         f"{heavy['reads']} / {heavy['reads_page_size_1000']} reads{heavy_l}"),
        ("  read batch ours / naive (median)",
         f"{_ms(read_ms['ours'])} ms / {_ms(read_ms['naive'])} ms{read_l}"),
        (f"  per-patient re-screen / read-only (median, {lat['reps']} x {lat['patients']})",
         f"{_ms(lat['rescreen_p50_ms'])} / {_ms(lat['read_only_p50_ms'])} ms{lat_l_text}"),
    ]
