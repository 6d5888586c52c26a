"""Render screening results for the terminal (rich tables, fit to its width) and files (CSV)."""

from __future__ import annotations

import csv
import io
import textwrap
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_ORDER = ("eligible", "potential-candidate", "ineligible")


@dataclass(frozen=True)
class PatientRow:
    """One patient's screening result (or the error that stopped it)."""

    patient: str
    result: dict[str, Any] | None = None  # the eligibility body (docs/http-api.md)
    research_subjects: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"patient": f"Patient/{self.patient}"}
        if self.result is not None:
            out["result"] = self.result
        if self.research_subjects:
            out["researchSubjects"] = self.research_subjects
        if self.error:
            out["error"] = self.error
        return out


def _issues(study: dict[str, Any]) -> list[str]:
    """'id (result): reason' for every criterion that is not met or unknown."""
    return [
        f"{c['id']} ({c['result']}): {c.get('reason', '')}"
        for c in study.get("criteria", [])
        if c.get("result") in ("not-met", "unknown")
    ]


TABLE_HEADERS = ("PATIENT", "STUDY", "STATUS", "NOT MET OR UNKNOWN")
STATUS_WIDTH = len("potential-candidate *")
# Colours only show on a terminal; rich leaves them out when the output is a file or a pipe.
STATUS_STYLE = {"eligible": "green", "potential-candidate": "yellow", "ineligible": "red",
                "error": "bold red"}
FALLBACK_WIDTH = 120  # columns when the output is not a terminal (a file keeps long lines)


def console_for(out: TextIO, width: int | None = None) -> Console:
    """A rich Console on `out`: the terminal's width, or FALLBACK_WIDTH for files and pipes."""
    terminal = hasattr(out, "isatty") and out.isatty()
    return Console(file=out, width=width or (None if terminal else FALLBACK_WIDTH),
                   highlight=False, emoji=False, soft_wrap=False)


def _table_lines(row: PatientRow) -> list[list[str]]:
    """Table cells for one patient: a line per issue (or one line saying all are met)."""
    if row.error or row.result is None:
        return [[row.patient, "-", "error", row.error or "no result"]]
    lines = []
    for study in row.result.get("studies", []):
        issues = _issues(study)
        written = row.research_subjects.get(study["study"], "")
        status = study["status"] + (" *" if written else "")
        if not issues:
            lines.append([row.patient, study["study"], status, "all criteria met"])
        for i, issue in enumerate(issues):
            lines.append([row.patient if i == 0 else "", study["study"] if i == 0 else "",
                          status if i == 0 else "", issue])
    return lines


class TableWriter:
    """Writes the results table patient by patient, so a population run holds no table in
    memory. Column widths are fixed up front from the ids and study keys to come; the last
    column takes the rest of the width and wraps.

    On a terminal each patient is a rich table (colours, the terminal's width). Into a file or a
    pipe (`> results.txt`) the same columns are written as plain lines: rendering a rich table
    costs several milliseconds a patient, more than screening them.
    """

    def __init__(self, out: TextIO, patient_ids: Iterable[str], study_keys: Iterable[str],
                 width: int | None = None, *, rich: bool | None = None) -> None:
        self.out = out
        self.console = console_for(out, width)
        self.rich = self.console.is_terminal if rich is None else rich
        self.widths = [
            max([len(TABLE_HEADERS[0]), *(len(p) for p in patient_ids)]),
            max([len(TABLE_HEADERS[1]), *(len(k) for k in study_keys)]),
            max(len(TABLE_HEADERS[2]), STATUS_WIDTH),
        ]
        self.written_any = False
        if self.rich:
            self.console.print(self._table(show_header=True))
            return
        self.indent = sum(self.widths) + 2 * len(self.widths)
        self.last_width = max(30, self.console.width - self.indent)
        head = "  ".join(h.ljust(w) for h, w in zip(TABLE_HEADERS, self.widths, strict=False))
        rule = "  ".join("-" * w for w in self.widths)
        out.write(f"{head}  {TABLE_HEADERS[-1]}\n{rule}  {'-' * len(TABLE_HEADERS[-1])}\n")

    def _table(self, *, show_header: bool = False) -> Table:
        table = Table(box=box.SIMPLE_HEAD, show_header=show_header, show_edge=False,
                      pad_edge=False, padding=(0, 1, 0, 0), expand=True, header_style="bold")
        for name, width in zip(TABLE_HEADERS, self.widths, strict=False):
            table.add_column(name, width=width, no_wrap=True, overflow="ellipsis")
        table.add_column(TABLE_HEADERS[-1], ratio=1, overflow="fold")
        return table

    def write(self, row: PatientRow) -> None:
        self.written_any = self.written_any or bool(row.research_subjects)
        if not self.rich:
            self._write_plain(row)
            return
        table = self._table()
        for cells in _table_lines(row):
            style = STATUS_STYLE.get(cells[2].removesuffix(" *"), "")
            table.add_row(Text(cells[0]), Text(cells[1]), Text(cells[2], style=style),
                          Text(cells[3]))
        self.console.print(table)

    def _write_plain(self, row: PatientRow) -> None:
        for cells in _table_lines(row):
            lead = "  ".join(c.ljust(w) for c, w in zip(cells[:-1], self.widths, strict=False))
            lines = textwrap.wrap(cells[-1], self.last_width, subsequent_indent="  ") or [""]
            self.out.write(f"{lead}  {lines[0]}".rstrip() + "\n")
            for line in lines[1:]:
                self.out.write(f"{' ' * self.indent}{line}".rstrip() + "\n")

    def finish(self) -> None:
        if self.written_any:
            note = "(* ResearchSubject written)"
            self.console.print(note) if self.rich else self.out.write(note + "\n")


def results_table(rows: Iterable[PatientRow], width: int | None = None) -> str:
    """Patient, study, status and the criteria that failed or are unknown, with reasons."""
    rows = list(rows)
    studies = [s["study"] for r in rows if r.result for s in r.result.get("studies", [])]
    buffer = io.StringIO()
    writer = TableWriter(buffer, [r.patient for r in rows], studies or ["-"], width, rich=True)
    for row in rows:
        writer.write(row)
    writer.finish()
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())


class SummaryCounter:
    """Counts per study and status, plus errors; holds no results."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.studies: list[str] = []
        self.errors = 0
        self.patients = 0

    def add(self, row: PatientRow) -> None:
        self.patients += 1
        if row.error or row.result is None:
            self.errors += 1
            return
        for study in row.result.get("studies", []):
            if study["study"] not in self.studies:
                self.studies.append(study["study"])
            self.counts[(study["study"], study["status"])] += 1

    def table(self) -> Table:
        """The counts as a rich Table (study x status)."""
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold",
                      caption=f"{self.patients} patient(s) screened, {self.errors} error(s)",
                      caption_justify="left")
        table.add_column("STUDY")
        for status in STATUS_ORDER:
            table.add_column(status.upper(), justify="right", style=STATUS_STYLE[status])
        for study in self.studies:
            table.add_row(study, *(str(self.counts[(study, s)]) for s in STATUS_ORDER))
        return table

    def render(self, width: int | None = None) -> str:
        buffer = io.StringIO()
        console_for(buffer, width).print(self.table())
        return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())


def summary_table(rows: Iterable[PatientRow]) -> str:
    """Counts per study and status, plus errors."""
    counter = SummaryCounter()
    for row in rows:
        counter.add(row)
    return counter.render()


def _plain_columns(rows: list[list[str]]) -> list[str]:
    """Rows of cells as aligned lines of plain text (no colours, whatever the terminal)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
            for row in rows]


def status_grid(rows: Iterable[PatientRow], studies: Iterable[str]) -> str:
    """A patient x study table of statuses, then the counts per study and status: the short
    answer of a run (the reasons are `eligibility screen PATIENT`'s). Plain text only."""
    rows, studies = list(rows), list(studies)
    counter = SummaryCounter()
    grid = [["PATIENT", *(s.upper() for s in studies)]]
    for row in rows:
        counter.add(row)
        if row.error or row.result is None:
            grid.append([row.patient, *(["error"] * len(studies))])
            continue
        status = {study["study"]: study["status"] for study in row.result.get("studies", [])}
        grid.append([row.patient, *(status.get(s, "-") for s in studies)])
    counts = [["STUDY", *(s.upper() for s in STATUS_ORDER)]]
    counts += [[s, *(str(counter.counts[(s, status)]) for status in STATUS_ORDER)]
               for s in studies]
    errors = [f"{row.patient}: {row.error or 'no result'}" for row in rows
              if row.error or row.result is None]
    lines = [*_plain_columns(grid), "", *_plain_columns(counts),
             f"{counter.patients} patient(s) screened, {counter.errors} error(s)", *errors]
    return "\n".join(lines)


CSV_HEADER = ["patient", "study", "status", "research_subject", "not_met", "unknown", "error"]


def csv_rows(row: PatientRow) -> list[list[str]]:
    """CSV lines for one patient: one per study (status, ResearchSubject, ids), or the error."""
    if row.error or row.result is None:
        return [[row.patient, "", "", "", "", "", row.error or "no result"]]
    out = []
    for study in row.result.get("studies", []):
        crit = study.get("criteria", [])
        out.append([
            row.patient, study["study"], study["status"],
            # The reference written, or `not-a-candidate` where none may be
            # (docs/candidates-and-triggers.md).
            row.research_subjects.get(study["study"], "") or (
                study.get("writeBack") if study.get("writeBack") == "not-a-candidate" else ""),
            ";".join(c["id"] for c in crit if c.get("result") == "not-met"),
            ";".join(c["id"] for c in crit if c.get("result") == "unknown"),
            "",
        ])
    return out


def results_csv(rows: Iterable[PatientRow]) -> str:
    """One line per (patient, study): status, ResearchSubject, not-met and unknown ids, error."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerows(csv_rows(row))
    return buffer.getvalue()
