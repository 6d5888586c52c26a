"""Grouping an export by patient: on-disk SQLite (what --bulk uses) against a dict in memory,
at two file sizes, each in its own process for its peak RSS.

    .venv/bin/python -m tests.benchmarks.bulk_grouping --patients 20000,80000
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from tests.benchmarks import synthetic  # noqa: E402


def write_export(folder: Path, patients: int, seed: int = 3) -> tuple[int, int]:
    """NDJSON files by type for `patients` light records; (resources, bytes)."""
    from tests.benchmarks.prevalence import light_record

    rng = random.Random(seed)
    handles: dict[str, Any] = {}
    count = size = 0
    try:
        for n in range(patients):
            for resource in light_record(f"g-{n:07d}", rng):
                rtype = resource["resourceType"]
                if rtype not in handles:
                    handles[rtype] = (folder / f"{rtype}.ndjson").open("w")
                line = json.dumps(resource, separators=(",", ":")) + "\n"
                handles[rtype].write(line)
                count += 1
                size += len(line)
    finally:
        for handle in handles.values():
            handle.close()
    return count, size


def group(engine: str, folder: Path) -> dict[str, Any]:
    """Load every file, mark a tenth of the patients candidates, read them back by patient."""
    from service.fhir.bulk_export import read_ndjson
    from service.fhir.subjects import subject_of

    started = time.perf_counter()
    files = sorted(folder.glob("*.ndjson"))

    def rows(path: Path) -> Any:
        for resource in read_ndjson(path):
            pid = resource["id"] if resource["resourceType"] == "Patient" else subject_of(
                resource, None)
            if pid:
                yield pid, resource

    def is_candidate(pid: str) -> bool:
        return int(pid[2:]) % 10 == 0

    grouped = resources = 0
    if engine == "sqlite":
        from service.usecases.export_grouping import PatientGrouping

        grouping = PatientGrouping(folder / "group.sqlite")
        for path in files:
            for pid, _ in rows(path):
                if is_candidate(pid):
                    grouping.add_candidates([pid])
            grouping.add(rows(path), only_candidates=False)
        for _, record in grouping.records():
            grouped += 1
            resources += len(record)
        grouping.close()
    else:
        by_patient: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for path in files:
            for pid, resource in rows(path):
                by_patient[pid].append(resource)
        for pid in sorted(by_patient):
            if is_candidate(pid):
                grouped += 1
                resources += len(by_patient[pid])
    return {"engine": engine, "candidates": grouped, "resources": resources,
            "seconds": round(time.perf_counter() - started, 2)}


def measure(engine: str, folder: Path) -> dict[str, Any]:
    """One grouping in a child process (launched by rss.py for its own peak RSS)."""
    with tempfile.NamedTemporaryFile() as out:
        done = subprocess.run(
            [sys.executable, "-m", "tests.benchmarks.rss", out.name, sys.executable, "-m",
             "tests.benchmarks.bulk_grouping", "--child", engine, str(folder)],
            capture_output=True, text=True, cwd=synthetic.REPO_ROOT, check=True)
        kib, cpu = Path(out.name).read_text().split()
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["rss_mb"] = round(int(kib) / 1024, 1)
    figures["cpu_seconds"] = float(cpu)
    return figures


def run_grouping(sizes: list[int], log: Any = print) -> dict[str, Any]:
    """Both engines at each size."""
    out: dict[str, Any] = {"sizes": []}
    for patients in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-group-") as tmp:
            folder = Path(tmp)
            count, size = write_export(folder, patients)
            row = {"patients": patients, "resources": count, "ndjson_mb": round(size / 1e6, 1)}
            for engine in ("sqlite", "memory"):
                row[engine] = measure(engine, folder)
                for stale in folder.glob("group.sqlite*"):
                    stale.unlink()
            log(f"bulk grouping: {json.dumps(row)}")
            out["sizes"].append(row)
    return out


def table(figures: dict[str, Any]) -> str:
    """The printed comparison."""
    lines = ["Grouping an export by patient (one process each; a tenth of patients candidates)",
             "patients  resources  NDJSON MB  SQLite s  SQLite RSS MB  dict s  dict RSS MB"]
    for row in figures["sizes"]:
        lines.append(f"{row['patients']:>8}  {row['resources']:>9}  {row['ndjson_mb']:>9}  "
                     f"{row['sqlite']['seconds']:>8}  {row['sqlite']['rss_mb']:>13}  "
                     f"{row['memory']['seconds']:>6}  {row['memory']['rss_mb']:>11}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bulk_grouping")
    parser.add_argument("--patients", default="20000,80000")
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "FOLDER"))
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(group(args.child[0], Path(args.child[1]))))
        return 0
    figures = run_grouping([int(p) for p in args.patients.split(",")])
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
