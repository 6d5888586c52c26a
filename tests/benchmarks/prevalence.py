"""Population at realistic prevalence: `screen --all` (candidates) against `--every-patient`.

A hospital of `patients` children of whom `prevalence` (0.2 %) have lupus. Both modes run as
the CLI would (a subprocess, default table output into a file, `--workers W`, with write-back)
on the same server state, candidates first: FHIR requests, wall time, ResearchSubjects written,
and peak RSS of each, and their ratios. Also checks that candidates mode wrote nothing for a
patient without lupus.

    .venv/bin/python -m tests.benchmarks.prevalence --patients 100000 --workers 4
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from service.fhir import candidates  # noqa: E402
from service.fhir import research_subject as rs  # noqa: E402
from service.fhir.client import FhirClient  # noqa: E402
from tests.benchmarks import fhir_server as bench_fhir  # noqa: E402
from tests.benchmarks import synthetic  # noqa: E402
from tests.benchmarks.population import child_env, run_measured  # noqa: E402

PREVALENCE = 0.002  # 0.2 %: childhood-onset SLE is rarer; a rheumatology-heavy hospital
_REQUESTS = re.compile(r"^(\d+) FHIR request\(s\) sent$")
_CANDIDATES = re.compile(r"^(\d+) candidate\(s\)(?: found in ([\d.]+) s)?")
_SUMMARY = re.compile(r"(\d+) patient\(s\) screened, (\d+) error\(s\)")


def light_record(pid: str, rng: random.Random) -> list[dict[str, Any]]:
    """A child without lupus: a Patient, 0-2 other conditions, one visit of 3-5 labs."""
    out: list[dict[str, Any]] = [synthetic.patient(pid, rng)]
    for i, entry in enumerate(rng.sample(synthetic.OTHER_CONDITIONS, rng.randint(0, 2))):
        out.append(synthetic.condition(f"{pid}-c{i}", pid, entry,
                                       synthetic.AS_OF - timedelta(days=rng.randint(60, 2000))))
    day = synthetic.AS_OF - timedelta(days=rng.randint(1, 700))
    for i, code in enumerate(rng.sample(synthetic.ROUTINE_PANEL, rng.randint(3, 5))):
        out.append(synthetic.observation(f"{pid}-l{i}", pid, code, day, rng))
    return out


def hospital(count: int, prevalence: float = PREVALENCE, seed: int = 7
             ) -> Iterator[list[dict[str, Any]]]:
    """`count` records, exactly round(count x prevalence) of them seed-derived lupus patients,
    spread evenly."""
    rng = random.Random(seed)
    seeds = synthetic.seed_records()
    lupus = max(1, round(count * prevalence))
    step = count / lupus
    chosen = {int(i * step + step / 2) for i in range(lupus)}
    for n in range(count):
        pid = f"hosp-{n:06d}"
        yield synthetic.lupus_patient(pid, n, seeds) if n in chosen else light_record(pid, rng)


def subjects_by_patient(client: FhirClient) -> dict[str, int]:
    """Patient id -> our ResearchSubjects on the server."""
    out: dict[str, int] = {}
    for subject in client.search_population(
            "ResearchSubject", {"identifier": f"{rs.RESEARCH_SUBJECT_SYSTEM}|", "_count": "1000",
                                "_elements": "individual"}):
        patient = candidates.patient_id_of(subject.get("individual"))
        if patient:
            out[patient] = out.get(patient, 0) + 1
    return out


def run_mode(base_url: str, flag: str, workers: int, server_pid: int | None) -> dict[str, Any]:
    """One CLI run (`screen --all` or `--every-patient`) with its requests, time, RSS."""
    argv = [sys.executable, "-m", "service.cli.main", "screen", flag, "--workers", str(workers),
            "--as-of", synthetic.AS_OF.isoformat()]
    run = run_measured(argv, child_env(base_url), server_pid)
    requests = next((int(m.group(1)) for line in run.stderr if (m := _REQUESTS.match(line))),
                    None)
    found = next((m for line in run.stderr if (m := _CANDIDATES.match(line))), None)
    listed = int(found.group(1)) if found else None
    finding = float(found.group(2)) if found and found.group(2) else None
    summary = _SUMMARY.search(run.stdout)
    if requests is None or summary is None:
        tail = "\n".join(run.stderr[-15:])
        raise RuntimeError(f"screen {flag} printed no request count or summary "
                           f"(exit {run.exit_code}):\n{tail}")
    return {"flag": flag, "workers": workers, "exit_code": run.exit_code,
            "patients": int(summary.group(1)), "errors": int(summary.group(2)),
            "candidates": listed, "finding_seconds": finding, "requests": requests,
            "wall_seconds": round(run.wall_seconds, 2), "rss_mb": round(run.rss_mb, 1)}


def run_prevalence(*, patients: int, workers: int, prevalence: float = PREVALENCE,
                   log: Any = print) -> dict[str, Any]:
    """Load the hospital on a fresh local server, run both modes, compare."""
    started = time.perf_counter()
    server = bench_fhir.start_server()
    try:
        # Counting every ResearchSubject of a large server is one slow search on the local
        # server (no index for a system-only identifier): a long timeout, no retries.
        client = FhirClient(bench_fhir.settings_for(server.base_url, fhir_timeout=900,
                                                    fhir_max_retries=0))
        lupus_ids: set[str] = set()
        loaded = 0

        def records() -> Iterator[list[dict[str, Any]]]:
            for record in hospital(patients, prevalence):
                if synthetic.is_lupus(record):
                    lupus_ids.add(record[0]["id"])
                yield record

        load_started = time.perf_counter()
        # Server-assigned ids: map ours to theirs through the order of the answers.
        loaded, server_ids = bench_fhir.load_population(client, records())
        load_seconds = time.perf_counter() - load_started
        log(f"prevalence: {patients} patients loaded ({loaded} resources, {load_seconds:.0f} s)")
        ordered = [f"hosp-{n:06d}" for n in range(patients)]
        ours_to_server = dict(zip(ordered, server_ids, strict=True))
        lupus_server_ids = {ours_to_server[i] for i in lupus_ids}

        cand = run_mode(server.base_url, "--all", workers, server.pid)
        log(f"prevalence: candidates mode: {json.dumps(cand)}")
        after_candidates = subjects_by_patient(client)
        log(f"prevalence: after candidates mode: {sum(after_candidates.values())} "
            "ResearchSubjects")
        every = run_mode(server.base_url, "--every-patient", workers, server.pid)
        log(f"prevalence: --every-patient: {json.dumps(every)}")
        after_every = subjects_by_patient(client)
    finally:
        server.stop()
    cand["research_subjects_written"] = sum(after_candidates.values())
    cand["non_candidates_written"] = sum(
        n for p, n in after_candidates.items() if p not in lupus_server_ids)
    every["research_subjects_written"] = sum(after_every.values()) - sum(after_candidates.values())
    return {
        "patients": patients, "prevalence": prevalence, "lupus_patients": len(lupus_ids),
        "resources": loaded, "load_seconds": round(load_seconds, 1),
        "candidates": cand, "every_patient": every,
        "ratios": {
            "requests": round(every["requests"] / max(cand["requests"], 1), 1),
            "wall": round(every["wall_seconds"] / max(cand["wall_seconds"], 1e-3), 1),
            "research_subjects": round(every["research_subjects_written"]
                                       / max(cand["research_subjects_written"], 1), 1),
            "rss": round(every["rss_mb"] / max(cand["rss_mb"], 0.1), 2),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def table(figures: dict[str, Any]) -> str:
    """The printed comparison."""
    cand, every, ratio = figures["candidates"], figures["every_patient"], figures["ratios"]
    rows = [
        ("", "screen --all (candidates)", "--every-patient", "every / candidates"),
        ("patients screened", cand["patients"], every["patients"], ""),
        ("FHIR requests", cand["requests"], every["requests"], f"{ratio['requests']}x"),
        ("wall time (s)", cand["wall_seconds"], every["wall_seconds"], f"{ratio['wall']}x"),
        ("ResearchSubjects written", cand["research_subjects_written"],
         every["research_subjects_written"], f"{ratio['research_subjects']}x"),
        ("  of them for non-candidates", cand["non_candidates_written"], "", ""),
        ("peak RSS (MB)", cand["rss_mb"], every["rss_mb"], f"{ratio['rss']}x"),
    ]
    widths = [max(len(str(r[i])) for r in rows) for i in range(4)]
    head = (f"Population at {figures['prevalence'] * 100:.1f}% prevalence: "
            f"{figures['patients']} patients ({figures['lupus_patients']} with lupus, "
            f"{figures['resources']} resources), {cand['workers']} workers")
    lines = [head] + ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                      for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.prevalence")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--prevalence", type=float, default=PREVALENCE)
    parser.add_argument("--out", default=str(synthetic.REPO_ROOT / "var" / "bench-prevalence.json"))
    args = parser.parse_args(argv)
    figures = run_prevalence(patients=args.patients, workers=args.workers,
                             prevalence=args.prevalence)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
