"""Population screening three ways, on HAPI and on the local server side by side: the
search-based `screen --all`, `screen --all --bulk` (Bulk Data export) and `--every-patient`,
then an incremental `--bulk --since last` after 1 % of the patients changed.

Each run is the CLI as a subprocess (write-back on, ResearchSubjects deleted before each full
run so each writes as a first run does): candidates, FHIR requests by kind, bytes downloaded
(--bulk), wall time, peak RSS.

    .venv/bin/python -m tests.benchmarks.bulk --patients 5000
    .venv/bin/python -m tests.benchmarks.bulk --patients 100000 --no-hapi --no-every-patient
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from service.fhir.client import FhirClient  # noqa: E402
from tests.benchmarks import fhir_server as bench_fhir  # noqa: E402
from tests.benchmarks import synthetic  # noqa: E402
from tests.benchmarks.population import child_env, run_measured  # noqa: E402
from tests.benchmarks.prevalence import PREVALENCE, hospital  # noqa: E402
from tests.support import hapi_server  # noqa: E402

_SENT = re.compile(r"(\d+) FHIR request\(s\) sent")
_FOUND = re.compile(r"^(\d+) candidate\(s\)")
_BULK = re.compile(r"^bulk export of (\d+) resource\(s\), (\d+) bytes, in ([\d.]+) s: (\d+) ")
_KINDS = re.compile(r"^bulk requests: (.*?);")
_SUMMARY = re.compile(r"(\d+) patient\(s\) screened, (\d+) error\(s\)")
CHANGED_SHARE = 0.01
# HAPI asks to be polled again after 120 s; a benchmark run honours it as a user's run would,
# so the --bulk wall time on HAPI includes those waits (reported apart as `export_seconds`).


def run_cli(base_url: str, *args: str, server_pid: int | None = None) -> dict[str, Any]:
    """One `eligibility screen` run and what it printed about its cost."""
    argv = [sys.executable, "-m", "service.cli.main", "screen", *args, "--csv",
            "--as-of", synthetic.AS_OF.isoformat()]
    run = run_measured(argv, child_env(base_url), server_pid)
    err = run.stderr
    out: dict[str, Any] = {"args": " ".join(args), "exit_code": run.exit_code,
                           "wall_seconds": round(run.wall_seconds, 1),
                           "rss_mb": round(run.rss_mb, 1)}
    for line in err:
        if m := _SENT.search(line):
            out["requests"] = int(m.group(1))
        if m := _FOUND.match(line):
            out["candidates"] = int(m.group(1))
        if m := _BULK.match(line):
            out.update(exported_resources=int(m.group(1)), bytes_downloaded=int(m.group(2)),
                       export_seconds=float(m.group(3)))
            # A full run counts candidates; an incremental one the changed patients it reads.
            out["changed_read" if "--since" in args else "candidates"] = int(m.group(4))
        if m := _KINDS.match(line):
            out["requests_by_kind"] = dict(
                (kind, int(n)) for n, kind in (part.split(" ", 1)
                                                for part in m.group(1).split(", ") if part))
    rows = [line for line in run.stdout.splitlines()[1:] if line]
    out["patients_screened"] = len({line.split(",")[0] for line in rows})
    if run.exit_code != 0:
        out["error_tail"] = err[-3:]
    return out


def delete_research_subjects(client: FhirClient) -> int:
    """Delete every ResearchSubject (paged without the record caps) before a full run."""
    ids = [r["id"] for r in client.search_population(
        "ResearchSubject", {"_count": "1000", "_elements": "id"}) if r.get("id")]
    for start in range(0, len(ids), 500):
        client.batch({"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "DELETE", "url": f"ResearchSubject/{rid}"}}
            for rid in ids[start:start + 500]]})
    return len(ids)


def change_patients(client: FhirClient, ids: list[str], share: float, seed: int = 11) -> int:
    """Add a new lab result to `share` of the patients (what changed since the last run)."""
    rng = random.Random(seed)
    chosen = rng.sample(ids, max(1, round(len(ids) * share)))
    day = synthetic.AS_OF - timedelta(days=1)
    entries = []
    for n, pid in enumerate(chosen):
        resource = synthetic.observation(f"chg-{n}", pid, rng.choice(synthetic.ROUTINE_PANEL),
                                         day, rng)
        resource.pop("id", None)
        entries.append({"resource": resource, "request": {"method": "POST",
                                                          "url": "Observation"}})
    for start in range(0, len(entries), 500):
        client.transaction({"resourceType": "Bundle", "type": "transaction",
                            "entry": entries[start:start + 500]})
    return len(chosen)


def measure_server(name: str, base_url: str, server_pid: int | None, patients: int,
                   log: Callable[[str], None], every_patient: bool = True) -> dict[str, Any]:
    """Load the hospital, then run the modes in turn on the same data."""
    client = FhirClient(bench_fhir.settings_for(base_url, fhir_timeout=900, fhir_max_retries=0))
    started = time.perf_counter()

    def records() -> Iterator[list[dict[str, Any]]]:
        yield from hospital(patients, PREVALENCE)

    loaded, ids = bench_fhir.load_population(client, records())
    load_seconds = time.perf_counter() - started
    log(f"{name}: {patients} patients, {loaded} resources loaded in {load_seconds:.0f} s")
    figures: dict[str, Any] = {"patients": patients, "resources": loaded,
                               "load_seconds": round(load_seconds, 1)}
    modes = [("search", ("--all",)), ("bulk", ("--all", "--bulk"))]
    if every_patient:  # two requests a patient: hours at 100,000 (--no-every-patient)
        modes.append(("every_patient", ("--every-patient",)))
    for key, args in modes:
        delete_research_subjects(client)
        figures[key] = run_cli(base_url, *args, server_pid=server_pid)
        log(f"{name}: {key}: {json.dumps(figures[key])}")
    # The incremental run follows a full --bulk run (its instant is the starting point).
    delete_research_subjects(client)
    figures["bulk_before_incremental"] = run_cli(base_url, "--all", "--bulk",
                                                 server_pid=server_pid)
    figures["changed_patients"] = change_patients(client, ids, CHANGED_SHARE)
    figures["incremental"] = run_cli(base_url, "--all", "--bulk", "--since", "last",
                                     server_pid=server_pid)
    log(f"{name}: incremental after {figures['changed_patients']} changed: "
        f"{json.dumps(figures['incremental'])}")
    client.close()
    return figures


def run_bulk(patients: int, *, hapi: bool = True, every_patient: bool = True,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Both servers, one after the other, in one run."""
    out: dict[str, Any] = {"command": " ".join(sys.argv), "machine": platform.node(),
                           "cpus": __import__("os").cpu_count(),
                           "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                           "patients": patients, "prevalence": PREVALENCE}
    server = bench_fhir.start_server()
    try:
        out["local"] = measure_server("local", server.base_url, server.pid, patients, log,
                                      every_patient)
    finally:
        server.stop()
    if hapi:
        hapi_server.build()
        started = time.perf_counter()
        remote = hapi_server.start(timeout=600, java_opts=("-Xmx2g", "-XX:+UseSerialGC"))
        try:
            out["hapi_start_seconds"] = round(time.perf_counter() - started, 1)
            out["hapi"] = measure_server("hapi", remote.base_url, remote.pid, patients, log,
                                         every_patient)
        finally:
            remote.stop()
    return out


def table(figures: dict[str, Any]) -> str:
    """Local and HAPI side by side, one row per figure."""
    servers = [s for s in ("local", "hapi") if s in figures]
    modes = [("search", "--all (search)"), ("bulk", "--all --bulk"),
             ("every_patient", "--every-patient"), ("incremental", "--bulk --since last")]
    lines = [f"Population screening, {figures['patients']} patients at "
             f"{figures['prevalence'] * 100:.1f}% prevalence ({figures['date']}, "
             f"{figures['machine']}, {figures['cpus']} CPUs)"]
    for server in servers:
        f = figures[server]
        lines.append(f"[{server}] {f['resources']} resources loaded in {f['load_seconds']} s; "
                     f"incremental after {f['changed_patients']} patients changed")
        lines.append(f"  {'mode':<22}{'candidates':>11}{'screened':>9}{'requests':>9}"
                     f"{'MB down':>8}{'wall s':>8}{'RSS MB':>8}  requests by kind")
        for key, label in modes:
            if key not in f:
                continue  # a mode this run left out
            run = f[key]
            mb = run.get("bytes_downloaded")
            lines.append(
                f"  {label:<22}{run.get('candidates', '-')!s:>11}{run['patients_screened']:>9}"
                f"{run.get('requests', '-')!s:>9}"
                f"{'-' if mb is None else round(mb / 1e6, 1)!s:>8}{run['wall_seconds']:>8}"
                f"{run['rss_mb']:>8}  {run.get('requests_by_kind', '')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bulk")
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--no-hapi", action="store_true")
    parser.add_argument("--no-every-patient", action="store_true",
                        help="leave out --every-patient (two requests a patient)")
    parser.add_argument("--out", default=str(synthetic.REPO_ROOT / "var" / "bench-bulk.json"))
    args = parser.parse_args(argv)
    figures = run_bulk(args.patients, hapi=not args.no_hapi,
                       every_patient=not args.no_every_patient)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
