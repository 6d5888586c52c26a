"""`eligibility screen --all --bulk`: the population from a Bulk Data export, with progress."""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

from service.cli.exits import EXIT_FAILURES, EXIT_OK, CliError
from service.cli.tables import SummaryCounter
from service.core.clock import Clock
from service.core.settings import Settings

_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def since_value(value: str | None) -> str | None:
    """--since: `last`, a date (from its midnight UTC) or a FHIR instant."""
    if value is None or value == "last":
        return value
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return f"{value}T00:00:00Z"
    if _INSTANT.fullmatch(value):
        return value
    raise CliError(f"--since {value[:40]!r} is not 'last', a date YYYY-MM-DD or an instant "
                   "(2026-01-31T00:00:00Z)")


class ExportProgress:
    """The export's X-Progress on stderr: a rich status line on a terminal, else plain lines."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.status: Any = None
        self.last: str | None = None

    def show(self, text: str | None) -> None:
        line = f"bulk export: {text or 'in progress'}"
        if line == self.last:
            return
        self.last = line
        if not self.console.is_terminal:
            print(line, file=sys.stderr, flush=True)
        elif self.status is None:
            self.status = self.console.status(line)
            self.status.start()
        else:
            self.status.update(line)

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def cmd_screen_bulk(settings: Settings, args: argparse.Namespace) -> int:
    """Screen the candidates found in a bulk export (docs/getting-started.md "The command line")."""
    from service.cli.progress import ScreeningProgress
    from service.cli.screen import ResultSink, _as_of, _studies
    from service.fhir.bulk_export import BulkExportRefused, BulkExportUnsupported
    from service.fhir.errors import FhirError
    from service.usecases.bulk_screen import BulkScreening, BulkScreeningError
    from service.usecases.screener import Screener

    if args.patients or not args.all:
        raise CliError("--bulk screens the population: give --all and no patient ids")
    if args.every_patient:
        raise CliError("--bulk finds the candidates; --every-patient cannot be combined with it")
    if args.checkpoint:
        raise CliError("--bulk takes no --checkpoint: a run with failures keeps no instant, so "
                       "the next --since last covers again what it missed")
    since = since_value(args.since)
    as_of = _as_of(args.as_of, Clock.from_settings(settings))
    screener = Screener(settings)
    studies = _studies(screener, args.study)
    shown = ExportProgress()
    started = time.monotonic()
    run = BulkScreening(screener, as_of=as_of, studies=studies, write=not args.no_write,
                        group=args.group, since=since, on_progress=shown.show)
    try:
        count = run.prepare()
    except KeyboardInterrupt:
        shown.close()
        print("bulk export cancelled (DELETE sent to the server)", file=sys.stderr)
        raise
    except BulkExportUnsupported as exc:
        raise CliError(f"--bulk: {exc}", EXIT_FAILURES) from None
    except BulkExportRefused as exc:
        raise CliError(f"--bulk: {str(exc)[:300]}", EXIT_FAILURES) from None
    except BulkScreeningError as exc:
        raise CliError(f"--bulk: {exc}", EXIT_FAILURES) from None
    except FhirError as exc:
        raise CliError(f"--bulk: {str(exc)[:300]}", EXIT_FAILURES) from None
    finally:
        shown.close()
    figures = run.figures
    who = ("changed patient(s) to check" if since else
           "candidate(s): patients with a diagnosis the studies look for, or a ResearchSubject "
           "of ours")
    print(f"bulk export of {figures.resources} resource(s), {figures.bytes_downloaded} bytes, "
          f"in {time.monotonic() - started:.1f} s: {count} {who}"
          + (" (_typeFilter refused: whole types filtered while reading)"
             if figures.type_filter_refused else "")
          + (" (kick-off sent as POST: the URL with _typeFilter was too long)"
             if figures.posted_kick_off else ""), file=sys.stderr)
    progress = ScreeningProgress(count)
    # Ids are known only as rows come: the table's id column is as wide as a UUID.
    sink = ResultSink(args, ["-" * 36], studies or tuple(screener.mappings.studies))
    summary = SummaryCounter()
    try:
        _write_rows(run.rows(), progress, sink, summary)
    except FhirError as exc:
        raise CliError(f"--bulk: {str(exc)[:300]}", EXIT_FAILURES) from None
    finally:
        progress.close()
    sink.finish()
    if sink.format == "table":
        print()
        print(summary.render())
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(run.figures.requests.items()))
    sent = screener.requests_sent()
    print(f"bulk requests: {kinds}; {sent} FHIR request(s) sent in all"
          + ("" if summary.errors else
             f"; next --since last starts at {figures.transaction_time}"
             if not args.no_write else ""), file=sys.stderr)
    return EXIT_FAILURES if summary.errors else EXIT_OK


def _write_rows(rows: Any, progress: Any, sink: Any, summary: SummaryCounter) -> None:
    """Each screened candidate as `screen --all` shows it; a changed non-candidate only counts."""
    from service.cli.tables import PatientRow

    for row in rows:
        if not row.screened:
            progress.step(patient=row.patient)  # a changed patient, no candidate
            continue
        out = PatientRow(row.patient, row.result, row.research_subjects, row.error)
        progress.step(failed=bool(out.error), patient=out.patient, reason=out.error)
        sink.write(out)
        summary.add(out)
