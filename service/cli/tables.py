"""Render screening results for the terminal (aligned tables) and for files (CSV)."""

from __future__ import annotations

import csv
import io
import shutil
import textwrap
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

STATUS_ORDER = ("eligible", "potential-candidate", "ineligible")


@dataclass(frozen=True)
class PatientRow:
    """One patient's screening result (or the error that stopped it)."""

    patient: str
    result: dict[str, Any] | None = None  # the api.md eligibility body
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
    """Writes the results table row by row, so a population run holds no table in memory.

    Column widths are fixed up front from the patient ids and study keys to come.
    """

    def __init__(self, out: TextIO, patient_ids: Iterable[str], study_keys: Iterable[str],
                 width: int | None = None) -> None:
        self.out = out
        self.widths = [
            max([len(TABLE_HEADERS[0]), *(len(p) for p in patient_ids)]),
            max([len(TABLE_HEADERS[1]), *(len(k) for k in study_keys)]),
            max(len(TABLE_HEADERS[2]), STATUS_WIDTH),
        ]
        self.indent = sum(self.widths) + 2 * len(self.widths)
        total = width or shutil.get_terminal_size((120, 24)).columns
        self.last_width = max(30, total - self.indent)
        self.written_any = False
        head = "  ".join(h.ljust(w) for h, w in zip(TABLE_HEADERS, self.widths, strict=False))
        rule = "  ".join("-" * w for w in self.widths)
        out.write(f"{head}  {TABLE_HEADERS[-1]}\n{rule}  {'-' * len(TABLE_HEADERS[-1])}\n")

    def write(self, row: PatientRow) -> None:
        self.written_any = self.written_any or bool(row.research_subjects)
        for cells in _table_lines(row):
            lead = "  ".join(c.ljust(w) for c, w in zip(cells[:-1], self.widths, strict=False))
            lines = textwrap.wrap(cells[-1], self.last_width, subsequent_indent="  ") or [""]
            self.out.write(f"{lead}  {lines[0]}".rstrip() + "\n")
            for line in lines[1:]:
                self.out.write(f"{' ' * self.indent}{line}".rstrip() + "\n")

    def finish(self) -> None:
        if self.written_any:
            self.out.write("(* ResearchSubject written)\n")


def results_table(rows: Iterable[PatientRow], width: int | None = None) -> str:
    """Patient, study, status and the criteria that failed or are unknown, with reasons."""
    rows = list(rows)
    studies = [s["study"] for r in rows if r.result for s in r.result.get("studies", [])]
    buffer = io.StringIO()
    writer = TableWriter(buffer, [r.patient for r in rows], studies or ["-"], width)
    for row in rows:
        writer.write(row)
    writer.finish()
    return buffer.getvalue().rstrip("\n")


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

    def render(self) -> str:
        headers = ["STUDY", *(s.upper() for s in STATUS_ORDER)]
        widths = [max([len(headers[0]), *(len(s) for s in self.studies)])] + [
            len(h) for h in headers[1:]]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        for study in self.studies:
            cells = [study, *(str(self.counts[(study, s)]) for s in STATUS_ORDER)]
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
        lines.append(f"{self.patients} patient(s) screened, {self.errors} error(s)")
        return "\n".join(line.rstrip() for line in lines)


def summary_table(rows: Iterable[PatientRow]) -> str:
    """Counts per study and status, plus errors."""
    counter = SummaryCounter()
    for row in rows:
        counter.add(row)
    return counter.render()


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
            row.research_subjects.get(study["study"], ""),
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
