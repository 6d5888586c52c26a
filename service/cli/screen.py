"""`eligibility screen`: patients given or the population, in order, from a thread pool."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

from service.cli.exits import EXIT_FAILURES, EXIT_OK, CliError
from service.cli.tables import SummaryCounter
from service.core.clock import Clock
from service.core.dates import calendar_date
from service.core.settings import Settings
from service.fhir.errors import FhirFatalError


def patient_ids(values: Sequence[str]) -> list[str]:
    from service.fhir.ids import normalize_patient_id

    ids = []
    for value in values:
        try:
            ids.append(normalize_patient_id(value))
        except ValueError as exc:
            raise CliError(f"{value[:80]!r}: {exc}") from None
    return list(dict.fromkeys(ids))


def _as_of(value: str | None, clock: Clock) -> date:
    if not value:
        return clock.today()
    try:
        return calendar_date(value)  # YYYY-MM-DD only, as the API's asOf
    except ValueError:
        raise CliError(f"--as-of {value!r} is not a date YYYY-MM-DD") from None


def _studies(screener: Any, wanted: Sequence[str] | None) -> tuple[str, ...] | None:
    if not wanted:
        return None
    known = screener.study_keys()
    for key in wanted:
        if key not in known:
            raise CliError(f"--study {key!r} is unknown; known: {', '.join(known)}")
    return tuple(dict.fromkeys(wanted))


class Checkpoint:
    """Patient ids already finished, one per line; appended as screenings finish."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.done: set[str] = set()
        self._lock = threading.Lock()
        if path is not None and path.exists():
            self.done = {line.strip() for line in path.read_text().splitlines() if line.strip()}

    def add(self, patient_id: str) -> None:
        if self.path is None:
            return
        with self._lock, self.path.open("a") as handle:
            handle.write(patient_id + "\n")
            handle.flush()


def screen_one(
    screener: Any, pid: str, as_of: date, studies: tuple[str, ...] | None, write: bool,
    every_patient: bool = False,
) -> tuple[Any, bool]:
    """(PatientRow, finished): finished is False when a retry later may help."""
    from service.cli.tables import PatientRow
    from service.core.log_setup import escape_controls
    from service.fhir.ids import FHIR_ID
    from service.usecases.screening_failures import ScreeningFailure

    if not FHIR_ID.fullmatch(pid):
        # --all takes ids from the server: a bad one is a failed row, shown escaped, and never
        # written to the checkpoint (it could break its one-id-a-line format).
        return PatientRow(escape_controls(pid[:80]),
                          error="not a valid FHIR Patient id; not screened"), False
    try:
        if write:
            # --every-patient is the one explicit request to write for non-candidates too.
            out = (screener.screen(pid, as_of=as_of, studies=studies, every_patient=True)
                   if every_patient else screener.screen(pid, as_of=as_of, studies=studies))
            return PatientRow(pid, out["result"], dict(out.get("researchSubjects") or {})), True
        return PatientRow(pid, screener.evaluate(pid, as_of=as_of, studies=studies)), True
    except ScreeningFailure as failure:
        # A temporary failure is not final: --checkpoint does not record the patient as done.
        return PatientRow(pid, error=failure.reason), not failure.retryable


class ResultSink:
    """Writes each patient's result as it arrives (table, CSV or a JSON array), so a run over a
    whole population keeps no results in memory."""

    def __init__(self, args: argparse.Namespace, ids: Sequence[str], studies: Sequence[str]
                 ) -> None:
        from service.cli.tables import CSV_HEADER, TableWriter

        self.format = "json" if args.json else "csv" if args.csv else "table"
        self.out = sys.stdout
        self.count = 0
        if self.format == "json":
            self.out.write("[")
        elif self.format == "csv":
            self.csv = csv.writer(self.out, lineterminator="\n")
            self.csv.writerow(CSV_HEADER)
        else:
            self.table = TableWriter(self.out, ids, studies)

    def write(self, row: Any) -> None:
        from service.cli.tables import csv_rows

        if self.format == "json":
            text = json.dumps(row.to_json(), indent=2).replace("\n", "\n  ")
            self.out.write(("," if self.count else "") + "\n  " + text)
        elif self.format == "csv":
            self.csv.writerows(csv_rows(row))
        else:
            self.table.write(row)
        self.count += 1
        self.out.flush()

    def finish(self) -> None:
        if self.format == "json":
            self.out.write("\n]\n" if self.count else "]\n")
        elif self.format == "table":
            self.table.finish()
        self.out.flush()


def _population(settings: Settings, screener: Any, args: argparse.Namespace,
                studies: tuple[str, ...] | None) -> list[str]:
    """Whom `--all` screens: the candidates (docs/getting-started.md), or with --every-patient
    every Patient."""
    from service.usecases.population import population

    size = settings.fhir_page_size
    if args.every_patient:
        return population(screener, studies, every_patient=True, page_size=size)
    started = time.monotonic()
    try:
        ids = population(screener, studies, every_patient=False, page_size=size)
    except FhirFatalError as exc:
        if exc.status not in (400, 403, 422):
            raise
        # Many EHRs require `patient` on every clinical search: population access is $export.
        raise CliError(f"the FHIR server refused a population search (HTTP {exc.status}); "
                       "use --bulk to screen the population from a Bulk Data export",
                       EXIT_FAILURES) from None
    print(f"{len(ids)} candidate(s) found in {time.monotonic() - started:.1f} s: patients with "
          "a diagnosis the studies look for, or a ResearchSubject of ours (--every-patient "
          "screens every Patient)", file=sys.stderr)
    return ids


def cmd_screen(settings: Settings, args: argparse.Namespace) -> int:
    """Screen patients given on the command line, or the population (--all)."""
    from service.cli.progress import ScreeningProgress
    from service.usecases.screener import Screener

    if getattr(args, "bulk", False):
        from service.cli.bulk import cmd_screen_bulk

        return cmd_screen_bulk(settings, args)
    if getattr(args, "group", None) or getattr(args, "since", None):
        raise CliError("--group and --since go with --all --bulk")
    population = args.all or args.every_patient
    if bool(args.patients) == bool(population):
        raise CliError("give patient ids or --all (not both)")
    as_of = _as_of(args.as_of, Clock.from_settings(settings))  # decided once, here
    ids = patient_ids(args.patients) if args.patients else []
    screener = Screener(settings)
    studies = _studies(screener, args.study)
    if population:
        ids = _population(settings, screener, args, studies)
    checkpoint = Checkpoint(Path(args.checkpoint) if args.checkpoint else None)
    todo = [pid for pid in ids if pid not in checkpoint.done]
    if len(todo) < len(ids):
        print(f"skipping {len(ids) - len(todo)} patient(s) done in {args.checkpoint}",
              file=sys.stderr)
    progress = ScreeningProgress(len(todo)) if population else None
    sink = ResultSink(args, todo, studies or tuple(screener.mappings.studies))
    summary = SummaryCounter()

    def emit(row: Any) -> None:
        sink.write(row)
        summary.add(row)

    try:
        _screen_in_order(screener, todo, as_of, studies, args, checkpoint, progress, emit)
    finally:
        if progress:
            progress.close()
    sink.finish()
    if population and sink.format == "table":
        print()
        print(summary.render())
    if population:
        # What the run cost the FHIR server (every attempt; the token endpoint not counted).
        sent = screener.requests_sent()
        if sent is not None:
            print(f"{sent} FHIR request(s) sent", file=sys.stderr)
    return EXIT_FAILURES if summary.errors else EXIT_OK


def _screen_in_order(screener: Any, todo: Sequence[str], as_of: date,
                     studies: tuple[str, ...] | None, args: argparse.Namespace,
                     checkpoint: Checkpoint, progress: Any,
                     emit: Callable[[Any], None]) -> None:
    """Screen `todo` from a thread pool with a bounded window in flight, taken in order: results
    come out in the order of the ids, and memory stays flat however many patients there are."""
    window = 4 * max(1, args.workers)
    remaining = iter(todo)
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        pending: deque[Any] = deque()

        def submit_next() -> None:
            pid = next(remaining, None)
            if pid is not None:
                pending.append(pool.submit(
                    screen_one, screener, pid, as_of, studies, not args.no_write,
                    bool(args.every_patient)))

        for _ in range(window):
            submit_next()
        while pending:
            row, finished = pending.popleft().result()
            submit_next()
            if finished:
                checkpoint.add(row.patient)
            if progress:
                progress.step(failed=bool(row.error), patient=row.patient, reason=row.error)
            emit(row)
