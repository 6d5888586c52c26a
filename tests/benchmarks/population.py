"""Population figure: `eligibility screen --all` as a subprocess vs a fetch-only floor, and RSS."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from service.fhir.client import FhirClient
from service.mappings import Mappings
from service.usecases.screening import ensure_research_studies, screen_patient
from tests.benchmarks import fhir_server as bench_fhir
from tests.benchmarks import synthetic

REPO_ROOT = synthetic.REPO_ROOT
_PROGRESS = re.compile(r"^screened (\d+)/(\d+)\b")  # service/progress.py's plain lines
_LAUNCHED = re.compile(r"^bench-rss: pid (\d+)$")
_SUMMARY = re.compile(r"(\d+) patient\(s\) (?:screened|fetched), (\d+) error\(s\)")


@dataclass(frozen=True)
class RunResult:
    """One subprocess run: throughput over the screening phase, wall time, peak RSS, CPU."""

    command: str
    workers: int
    patients: int
    errors: int
    seconds: float  # from the first to the last progress line (excludes start-up and listing)
    wall_seconds: float
    rss_mb: float
    exit_code: int
    cpu_seconds: float = 0.0  # the child's user + system time over the screening phase
    server_cpu_seconds: float | None = None  # the FHIR server's, over the same phase

    @property
    def per_second(self) -> float:
        """Patients per second over the screening phase."""
        done = max(self.patients - 1, 1)  # the first progress line comes after patient 1
        return done / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The figures of this run."""
        done = max(self.patients - 1, 1)
        return {
            "patients": self.patients, "errors": self.errors, "workers": self.workers,
            "patients_per_second": round(self.per_second, 1),
            "seconds": round(self.seconds, 2), "wall_seconds": round(self.wall_seconds, 2),
            "rss_mb": round(self.rss_mb, 1), "exit_code": self.exit_code,
            "cpu_ms_per_patient": round(self.cpu_seconds * 1000 / done, 2),
            "server_cpu_ms_per_patient": None if self.server_cpu_seconds is None else
            round(self.server_cpu_seconds * 1000 / done, 2),
        }


@dataclass(frozen=True)
class Measured:
    """What run_measured saw of one child process."""

    exit_code: int
    wall_seconds: float
    rss_mb: float
    stderr: list[str]
    # At each progress line: (perf_counter time, patients done, child CPU s, server CPU s).
    progress: list[tuple[float, int, float | None, float | None]]
    stdout: str


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a running process (Linux /proc), None if unreadable."""
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def run_measured(argv: Sequence[str], env: dict[str, str], server_pid: int | None = None
                 ) -> Measured:
    """Run a child, sampling its CPU time (and the FHIR server's) at every progress line.

    The child runs under the small launcher tests/benchmarks/rss.py, which reports its pid and
    afterwards its own ru_maxrss (a child forked straight from this big process would inherit
    this process's high-water mark).
    """
    lines: list[str] = []
    progress: list[tuple[float, int, float | None, float | None]] = []
    pid: int | None = None
    with tempfile.TemporaryDirectory(prefix="bench-run-") as folder:
        rss_file = Path(folder) / "rss"
        out_file = Path(folder) / "stdout"
        with out_file.open("w+") as out:
            started = time.perf_counter()
            child = subprocess.Popen(
                [sys.executable, "-m", "tests.benchmarks.rss", str(rss_file), *argv],
                env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.PIPE, text=True,
            )
            assert child.stderr is not None
            for raw in child.stderr:
                now = time.perf_counter()
                line = raw.rstrip("\n")
                if pid is None and (m := _LAUNCHED.match(line)):
                    pid = int(m.group(1))
                    continue
                if m := _PROGRESS.match(line):
                    progress.append((now, int(m.group(1)), process_cpu_seconds(pid),
                                     process_cpu_seconds(server_pid)))
                lines.append(line)
            code = child.wait()
            wall = time.perf_counter() - started
        stdout = out_file.read_text()
        try:
            rss_mb = int(rss_file.read_text().split()[0]) / 1024
        except (OSError, ValueError, IndexError):
            rss_mb = 0.0
    return Measured(code, wall, rss_mb, lines, progress, stdout)


def _delta(first: float | None, last: float | None) -> float | None:
    return None if first is None or last is None else last - first


def _run(argv: Sequence[str], env: dict[str, str], workers: int, label: str,
         server_pid: int | None) -> RunResult:
    run = run_measured(argv, env, server_pid)
    summary = _SUMMARY.search(run.stdout)
    if not run.progress or summary is None:
        tail = "\n".join(run.stderr[-15:])
        raise RuntimeError(f"{label} produced no progress or summary "
                           f"(exit {run.exit_code}):\n{tail}")
    patients, errors = int(summary.group(1)), int(summary.group(2))
    first, last = run.progress[0], run.progress[-1]
    return RunResult(label, workers, patients, errors, last[0] - first[0], run.wall_seconds,
                     run.rss_mb, run.exit_code, _delta(first[2], last[2]) or 0.0,
                     _delta(first[3], last[3]))


def child_env(base_url: str) -> dict[str, str]:
    """Environment of the CLI and floor children: the FHIR server, defaults otherwise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FHIR_", "QUEUE_"))}
    env.update(FHIR_BASE_URL=base_url, QUEUE_URL="memory://", PYTHONPATH=str(REPO_ROOT))
    return env


def run_cli(base_url: str, workers: int, as_of: date, *, what_if: str | None = None,
            server_pid: int | None = None) -> RunResult:
    """`eligibility screen --every-patient --workers N --as-of D` (with write-back) as a
    subprocess: the same patients the floor fetches."""
    prefix = [sys.executable, "-m", "service.cli.main"]
    if what_if:
        prefix = [sys.executable, "-m", "tests.benchmarks.whatif_cli", "--what-if", what_if]
    argv = [*prefix, "screen", "--every-patient", "--workers", str(workers),
            "--as-of", as_of.isoformat()]
    return _run(argv, child_env(base_url), workers, "eligibility screen --every-patient",
                server_pid)


def run_floor(base_url: str, workers: int, *, server_pid: int | None = None) -> RunResult:
    """The fetch-only floor with the same worker count, as a subprocess."""
    argv = [sys.executable, "-m", "tests.benchmarks.floor", "--workers", str(workers)]
    return _run(argv, child_env(base_url), workers, "fetch-only floor", server_pid)


def _mean_json(runs: Sequence[RunResult]) -> dict[str, Any]:
    """The last run's figures with the CPU figures averaged over all runs."""
    out = runs[-1].to_json()
    for key in ("cpu_ms_per_patient", "server_cpu_ms_per_patient"):
        values = [r.to_json()[key] for r in runs]
        out[key] = None if None in values else round(statistics.fmean(values), 2)
    return out


def pair(base_url: str, workers: int, as_of: date, *, what_if: str | None = None,
         reps: int = 1, server_pid: int | None = None) -> dict[str, Any]:
    """Floor and CLI in turns (floor, CLI, floor, CLI, ...): the ratio of their mean rates.

    Taking turns on the same server state within the same minute is what makes the ratio
    stable on a shared machine where absolute rates drift by tens of percent.
    """
    floors: list[RunResult] = []
    clis: list[RunResult] = []
    for _ in range(reps):
        floors.append(run_floor(base_url, workers, server_pid=server_pid))
        clis.append(run_cli(base_url, workers, as_of, what_if=what_if, server_pid=server_pid))
    floor_rate = statistics.fmean(r.per_second for r in floors)
    cli_rate = statistics.fmean(r.per_second for r in clis)
    cli = _mean_json(clis) | {"patients_per_second": round(cli_rate, 1),
                              "rss_mb": round(max(r.rss_mb for r in clis), 1),
                              "errors": sum(r.errors for r in clis),
                              "runs_per_second": [round(r.per_second, 1) for r in clis]}
    floor = _mean_json(floors) | {"patients_per_second": round(floor_rate, 1),
                                  "runs_per_second": [round(r.per_second, 1) for r in floors]}
    out = {"cli": cli, "floor": floor,
           "ratio": round(cli_rate / floor_rate, 2) if floor_rate else 0.0,
           "cpu_ratio": None, "what_if": what_if, "reps": reps}
    # CPU of the run's process plus the FHIR server's, per patient: on a CPU-bound machine the
    # throughput ratio follows this one, which drifts far less with neighbours' load.
    if cli["server_cpu_ms_per_patient"] is not None and \
            floor["server_cpu_ms_per_patient"] is not None:
        spent = cli["cpu_ms_per_patient"] + cli["server_cpu_ms_per_patient"]
        floor_spent = floor["cpu_ms_per_patient"] + floor["server_cpu_ms_per_patient"]
        out["cpu_ratio"] = round(floor_spent / spent, 2) if spent else None
    return out


def breakdown(client: FhirClient, mappings: Mappings, ids: Sequence[str], as_of: date
              ) -> dict[str, float]:
    """Milliseconds per patient in-process: FHIR read, FHIR write, ResearchSubject check,
    and the rest (evaluation, building, JSON), over `ids` screened with write-back."""
    from service.fhir import research_subject as rs

    spent = {"read": 0.0, "write": 0.0, "rs_check": 0.0}
    original = (client.run_queries, client.transaction, rs.validate_research_subject)

    def timed(name: str, func: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started
        return wrapper

    refs = ensure_research_studies(client, mappings, synthetic.SEEDS_DIR)
    client.run_queries = timed("read", original[0])  # type: ignore[method-assign]
    client.transaction = timed("write", original[1])  # type: ignore[method-assign]
    rs.validate_research_subject = timed("rs_check", original[2])
    try:
        started = time.perf_counter()
        for pid in ids:
            screen_patient(client, mappings, pid, as_of=as_of, write=True, research_studies=refs)
        total = time.perf_counter() - started
    finally:
        del client.run_queries, client.transaction  # back to the class's methods
        rs.validate_research_subject = original[2]
    n = max(len(ids), 1)
    out = {k: round(v * 1000 / n, 2) for k, v in spent.items()}
    out["other"] = round((total - sum(spent.values())) * 1000 / n, 2)
    out["total"] = round(total * 1000 / n, 2)
    return out


PROPOSED = "no-rs-model-validation"  # tests/benchmarks/whatif_cli.py


def run_population(client: FhirClient, mappings: Mappings, *, small: int, large: int,
                   workers: Sequence[int], sample: int, what_if: bool, reps: int = 2,
                   server_pid: int | None = None, log: Any = print) -> dict[str, Any]:
    """Load `small` patients, measure; grow to `large`, measure cold and warm runs.

    cold: first screening, 2 ResearchSubjects created per patient (run at the most workers);
    warm: the nightly re-screen of unchanged records (write-back skipped), at every worker
    count. With `what_if`, the same runs again with the proposed changes (PROPOSED).
    """
    base_url = client.base_url
    as_of = synthetic.AS_OF
    most = max(workers)
    out: dict[str, Any] = {"patients": large, "workers": list(workers), "small": small}
    started = time.perf_counter()
    records = list(synthetic.population(large))
    out["resources"] = sum(len(r) for r in records)
    out["lupus_patients"] = sum(1 for r in records if synthetic.is_lupus(r))

    load_started = time.perf_counter()
    loaded = bench_fhir.load_population(client, records[:small])[0]
    small_seconds = time.perf_counter() - load_started
    log(f"population: {small} patients loaded ({loaded} resources, {small_seconds:.1f} s)")
    cold_small = run_cli(base_url, most, as_of)
    warm_small = run_cli(base_url, 1, as_of)
    floor_small = run_floor(base_url, 1)
    log(f"population: {small} patients screened cold ({most} workers) and warm (1 worker)")
    ids = bench_fhir.patient_ids(client)
    bench_fhir.delete_research_subjects(client)
    sample_ids = ids[:sample]
    cold_split = breakdown(client, mappings, sample_ids, as_of)
    warm_split = breakdown(client, mappings, sample_ids, as_of)
    bench_fhir.delete_research_subjects(client)

    load_started = time.perf_counter()
    loaded += bench_fhir.load_population(client, records[small:])[0]
    load_seconds = small_seconds + time.perf_counter() - load_started
    out["load_seconds"] = round(load_seconds, 1)
    out["load_seconds_per_1000_resources"] = round(load_seconds / max(loaded, 1) * 1000, 3)
    log(f"population: {large} patients loaded ({loaded} resources, {load_seconds:.1f} s)")

    cold = {f"w{most}": pair(base_url, most, as_of, server_pid=server_pid)}
    log(f"population: first screening, {most} workers: ratio {cold[f'w{most}']['ratio']}")
    proposed: dict[str, Any] = {}
    if what_if:
        bench_fhir.delete_research_subjects(client)
        proposed[f"cold_w{most}"] = pair(base_url, most, as_of, what_if=PROPOSED,
                                         server_pid=server_pid)
        log(f"population: first screening, proposed changes: ratio "
            f"{proposed[f'cold_w{most}']['ratio']}")
    warm: dict[str, Any] = {}
    for w in workers:
        warm[f"w{w}"] = pair(base_url, w, as_of, reps=reps, server_pid=server_pid)
        log(f"population: re-screen, {w} worker(s): ratio {warm[f'w{w}']['ratio']}")
        if what_if:
            proposed[f"warm_w{w}"] = pair(base_url, w, as_of, what_if=PROPOSED, reps=reps,
                                             server_pid=server_pid)
            log(f"population: re-screen, {w} worker(s), proposed changes: ratio "
                f"{proposed[f'warm_w{w}']['ratio']}")
    out["cold"], out["warm"] = cold, warm
    if what_if:
        out["proposed"] = proposed | {"changes": PROPOSED}
    out["memory"] = {
        "small": small, "large": large,
        "cold_workers": most, "warm_workers": 1,
        "cold_small_mb": round(cold_small.rss_mb, 1),
        "cold_large_mb": cold[f"w{most}"]["cli"]["rss_mb"],
        "warm_small_mb": round(warm_small.rss_mb, 1),
        "warm_large_mb": warm["w1"]["cli"]["rss_mb"] if "w1" in warm else None,
        "floor_small_mb": round(floor_small.rss_mb, 1),
        "floor_large_mb": warm[f"w{min(workers)}"]["floor"]["rss_mb"],
    }
    mem = out["memory"]
    mem["growth_mb"] = round(mem["cold_large_mb"] - mem["cold_small_mb"], 1)
    mem["growth_ratio"] = round(mem["cold_large_mb"] / max(mem["cold_small_mb"], 0.1), 2)
    mem["kb_per_patient"] = round(mem["growth_mb"] * 1024 / max(large - small, 1), 1)
    out["small_runs"] = {"cold": cold_small.to_json(), "warm": warm_small.to_json()}
    out["breakdown_ms"] = {"cold": cold_split, "warm": warm_split, "sample": len(sample_ids)}
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out
