"""Run every benchmark against the local FHIR server on loopback; print one table, write JSON.

    .venv/bin/python -m tests.benchmarks.run            # full run (about 6 minutes on 2 cores)
    .venv/bin/python -m tests.benchmarks.run --quick    # small numbers, under a minute
    .venv/bin/python -m tests.benchmarks.run --hapi     # also on HAPI (hapi/, Java + Maven)
    python tests/benchmarks/run.py --out var/bench-results.json

Figures (see docs/performance.md): FHIR round trips per screening vs a naive client;
evaluation cost vs json.loads; `eligibility screen --all` throughput vs a fetch-only floor and
its peak RSS; REST and CDS Hooks latency under concurrent clients; webhook triggers until
every screening is written; the coordinator's worklist at 500 and 5,000 ResearchSubjects.
Ratios are measured side by side in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file: import from the repository root, not from this folder.
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from service.core.settings import Settings  # noqa: E402
from service.engine.evaluate import evaluate_patient  # noqa: E402
from service.fhir.client import FhirClient  # noqa: E402
from service.mappings import Mappings, load_mappings  # noqa: E402
from service.usecases.screening import screen_patient  # noqa: E402
from service.usecases.seeding import load_seeds  # noqa: E402
from tests.benchmarks import fhir_server as bench_fhir  # noqa: E402
from tests.benchmarks import report, synthetic  # noqa: E402
from tests.benchmarks.evaluation import run_evaluation  # noqa: E402
from tests.benchmarks.hapi_column import run_hapi, screening_latency  # noqa: E402
from tests.benchmarks.http_service import CdsKey, start_service  # noqa: E402
from tests.benchmarks.latency import run_latency  # noqa: E402
from tests.benchmarks.population import run_population  # noqa: E402
from tests.benchmarks.prevalence import run_prevalence  # noqa: E402
from tests.benchmarks.roundtrips import run_roundtrips  # noqa: E402
from tests.benchmarks.triggers import candidate_subjects, run_triggers  # noqa: E402
from tests.benchmarks.worklist import run_worklist  # noqa: E402

DEFAULT_OUT = synthetic.REPO_ROOT / "var" / "bench-results.json"


@dataclass(frozen=True)
class Scale:
    """How big each benchmark is."""

    patients: int = 2000
    small: int = 500
    workers: tuple[int, ...] = (1, 2, 4)
    breakdown_sample: int = 100
    what_if: bool = True
    population_reps: int = 2
    heavy_years: int = 5
    eval_reps: int = 15
    validate_reps: int = 3
    clients: int = 16
    latency_seconds: float = 30.0
    cds_requests: int = 300
    cds_seconds: float = 10.0
    notifications: int = 500
    trigger_patients: int = 100
    coalesce_seconds: float = 5.0
    prevalence_patients: int = 100_000
    prevalence_workers: int = 4
    worklist_small: int = 500
    worklist_large: int = 5000
    worklist_reps: int = 20


# The what-if (dropping the R4B model check) is applied: the write path checks a compiled JSON
# Schema now. `--what-if` still runs tests/benchmarks/whatif_cli.py's changes on request.
FULL = Scale(what_if=False)
QUICK = Scale(patients=40, small=10, workers=(1, 2), breakdown_sample=5, population_reps=1,
              heavy_years=1, eval_reps=3, validate_reps=1, clients=4, latency_seconds=2.0,
              cds_requests=10, cds_seconds=1.0, notifications=20, trigger_patients=5,
              coalesce_seconds=1.0, prevalence_patients=200, prevalence_workers=2,
              what_if=False, worklist_small=6, worklist_large=15, worklist_reps=2)


def seed_patient_ids() -> list[str]:
    """Seed patient ids in manifest order."""
    return [next(r["id"] for r in record if r["resourceType"] == "Patient")
            for record in synthetic.seed_records()]


def check_retrieval(client: FhirClient, mappings: Mappings) -> dict[str, Any]:
    """Each seed screened from the server equals the engine on the seed file itself.

    Guards the retrieval end to end, the local server's search index included: a search that
    lost a resource would change a result here.
    """
    def shape(evaluation: Any) -> list[Any]:
        return [(s.study, s.status, [(c.id, c.result) for c in s.criteria])
                for s in evaluation.studies]

    mismatches = []
    records = synthetic.seed_records()
    for record in records:
        pid = next(r["id"] for r in record if r["resourceType"] == "Patient")
        direct = evaluate_patient(record, mappings, synthetic.AS_OF, patient_id=pid)
        served = screen_patient(client, mappings, pid, as_of=synthetic.AS_OF,
                                write=False).evaluation
        if shape(direct) != shape(served):
            mismatches.append(pid)
    return {"seed_patients": len(records), "server_equals_file": len(records) - len(mismatches),
            "mismatches": mismatches}


def run(scale: Scale, *, mode: str = "full", log: Any = print, hapi: bool = False
        ) -> dict[str, Any]:
    """Every benchmark in turn on one local FHIR server; the figures as a dict."""
    started = time.perf_counter()
    figures: dict[str, Any] = {"machine": report.machine(), "scale": asdict(scale)}
    mappings = load_mappings(Settings().mappings_dir)
    log("evaluation: timing evaluate_patient against json.loads ...")
    figures["evaluation"] = run_evaluation(mappings, years=scale.heavy_years,
                                           reps=scale.eval_reps,
                                           validate_reps=scale.validate_reps)
    server = bench_fhir.start_server()
    try:
        client = FhirClient(bench_fhir.settings_for(server.base_url))
        figures["population"] = run_population(
            client, mappings, small=scale.small, large=scale.patients, workers=scale.workers,
            sample=scale.breakdown_sample, what_if=scale.what_if, reps=scale.population_reps,
            server_pid=server.pid, log=log)
        population_ids = bench_fhir.patient_ids(client)
        load_seeds(client, synthetic.SEEDS_DIR, mappings=mappings)
        seeds = seed_patient_ids()
        heavy = synthetic.heavy_record(years=scale.heavy_years)
        heavy_id = bench_fhir.load_population(client, [heavy])[1][0]
        log("round trips: seed patients, naive baseline, heavy record ...")
        figures["roundtrips"] = run_roundtrips(server.base_url, mappings, seeds,
                                               heavy_id=heavy_id)
        figures["checks"] = check_retrieval(client, mappings)
        if hapi:  # the local side of the HAPI column, measured the same way
            figures["screening_latency"] = screening_latency(server.base_url, mappings, seeds)
        trigger_records = list(synthetic.population(scale.trigger_patients, start=900_000))
        trigger_ids = bench_fhir.load_population(client, trigger_records)[1]
        trigger_expected = candidate_subjects(trigger_records, mappings)
        with tempfile.TemporaryDirectory(prefix="bench-service-") as folder:
            key = CdsKey.create(Path(folder))
            service = start_service(server.base_url, Path(folder), cds_key=key,
                                    webhook_secret="bench-webhook-secret",
                                    coalesce_seconds=scale.coalesce_seconds)
            try:
                log(f"latency: {scale.clients} clients for {scale.latency_seconds:.0f} s ...")
                latency_ids = seeds + population_ids[: max(0, 200 - len(seeds))]
                figures["latency"] = run_latency(
                    service, server.base_url, mappings, latency_ids, seeds[1], key,
                    clients=scale.clients, seconds=scale.latency_seconds,
                    cds_requests=scale.cds_requests, cds_seconds=scale.cds_seconds)
                log(f"triggers: {scale.notifications} webhooks for {len(trigger_ids)} "
                    "patients ...")
                figures["triggers"] = run_triggers(
                    service, client, trigger_ids, notifications=scale.notifications,
                    studies=len(mappings.studies), expected=trigger_expected)
            finally:
                service.stop()
    finally:
        server.stop()
    log(f"worklist: {scale.worklist_small} and {scale.worklist_large} ResearchSubjects a study ...")
    figures["worklist"] = run_worklist(mappings, small=scale.worklist_small,
                                       large=scale.worklist_large, reps=scale.worklist_reps,
                                       log=log)
    log(f"prevalence: {scale.prevalence_patients} patients, candidates vs --every-patient ...")
    figures["prevalence"] = run_prevalence(patients=scale.prevalence_patients,
                                           workers=scale.prevalence_workers, log=log)
    if hapi:
        figures["hapi"] = run_hapi(mappings, seed_patient_ids(), heavy_years=scale.heavy_years,
                                   log=log)
    figures["run"] = {
        "mode": mode,
        "seconds": round(time.perf_counter() - started, 1),
        "fhir_server": "localfhir (Medplum in-memory)",
        "command": "python -m tests.benchmarks.run" + (" --quick" if mode == "quick" else "")
        + (" --hapi" if hapi else ""),
    }
    return figures


def build_parser() -> argparse.ArgumentParser:
    """Options: --quick, --out and size overrides."""
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.run",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small numbers (smoke run)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="JSON figures (default var/bench-results.json)")
    parser.add_argument("--no-what-if", action="store_true",
                        help="skip the what-if population run")
    parser.add_argument("--what-if", action="store_true",
                        help="also run the population with tests/benchmarks/whatif_cli.py")
    for name, kind in (("patients", int), ("small", int), ("clients", int),
                       ("latency-seconds", float), ("notifications", int),
                       ("trigger-patients", int), ("coalesce-seconds", float),
                       ("heavy-years", int), ("prevalence-patients", int),
                       ("prevalence-workers", int), ("worklist-small", int),
                       ("worklist-large", int), ("worklist-reps", int)):
        parser.add_argument(f"--{name}", type=kind, help="override the mode's value")
    parser.add_argument("--workers", help="comma-separated worker counts (e.g. 1,2,4)")
    parser.add_argument("--hapi", action="store_true",
                        help="also measure round trips and latency on HAPI (hapi/, Java + Maven)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the table, write the JSON; exit 0 (figures that miss goals are not errors)."""
    args = build_parser().parse_args(argv)
    scale = QUICK if args.quick else FULL
    overrides: dict[str, Any] = {
        field: getattr(args, field) for field in
        ("patients", "small", "clients", "latency_seconds", "notifications",
         "trigger_patients", "coalesce_seconds", "heavy_years", "prevalence_patients",
         "prevalence_workers", "worklist_small", "worklist_large", "worklist_reps")
        if getattr(args, field) is not None
    }
    if args.workers:
        overrides["workers"] = tuple(int(w) for w in args.workers.split(","))
    if args.no_what_if:
        overrides["what_if"] = False
    if args.what_if:
        overrides["what_if"] = True
    scale = replace(scale, **overrides)
    if scale.small > scale.patients:
        scale = replace(scale, small=scale.patients)
    if scale.worklist_small > scale.worklist_large:
        scale = replace(scale, worklist_small=scale.worklist_large)

    def log(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    figures = run(scale, mode="quick" if args.quick else "full", log=log, hapi=args.hapi)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(report.table(figures))
    print(f"\nFigures written to {args.out}")
    missing = report.missing_keys(figures, hapi=args.hapi)
    if missing:
        print(f"missing figures: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
