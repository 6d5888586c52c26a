"""Render screening results for the terminal (aligned tables) and for files (CSV)."""

from __future__ import annotations

import csv
import io
import shutil
import textwrap
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

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


def _render(headers: Sequence[str], rows: Sequence[Sequence[str]], wrap_last: int | None) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))
    indent = sum(widths[:-1]) + 2 * (len(headers) - 1)
    last_width = max(30, (wrap_last or 120) - indent)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers[:-1], widths, strict=False))
           + "  " + headers[-1]]
    out.append("  ".join("-" * w for w in widths[:-1]) + "  " + "-" * len(headers[-1]))
    for row in rows:
        lead = "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)) + "  "
        lines = textwrap.wrap(row[-1], last_width, subsequent_indent="  ") or [""]
        out.append(lead + lines[0])
        out.extend(" " * indent + line for line in lines[1:])
    return "\n".join(line.rstrip() for line in out)


def results_table(rows: Iterable[PatientRow], width: int | None = None) -> str:
    """Patient, study, status and the criteria that failed or are unknown, with reasons."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    table: list[list[str]] = []
    for row in rows:
        if row.error or row.result is None:
            table.append([row.patient, "-", "error", row.error or "no result"])
            continue
        for study in row.result.get("studies", []):
            issues = _issues(study)
            written = row.research_subjects.get(study["study"], "")
            status = study["status"] + (" *" if written else "")
            if not issues:
                table.append([row.patient, study["study"], status, "all criteria met"])
            for i, issue in enumerate(issues):
                table.append([row.patient if i == 0 else "", study["study"] if i == 0 else "",
                              status if i == 0 else "", issue])
    headers = ["PATIENT", "STUDY", "STATUS", "NOT MET OR UNKNOWN"]
    text = _render(headers, table, width)
    if any(r.research_subjects for r in rows if isinstance(r, PatientRow)):
        text += "\n(* ResearchSubject written)"
    return text


def summary_table(rows: Iterable[PatientRow]) -> str:
    """Counts per study and status, plus errors."""
    counts: Counter[tuple[str, str]] = Counter()
    studies: list[str] = []
    errors = 0
    patients = 0
    for row in rows:
        patients += 1
        if row.error or row.result is None:
            errors += 1
            continue
        for study in row.result.get("studies", []):
            if study["study"] not in studies:
                studies.append(study["study"])
            counts[(study["study"], study["status"])] += 1
    headers = ["STUDY", *(s.upper() for s in STATUS_ORDER)]
    widths = [max([len(headers[0]), *(len(s) for s in studies)])] + [len(h) for h in headers[1:]]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for study in studies:
        cells = [study, *(str(counts[(study, s)]) for s in STATUS_ORDER)]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    lines.append(f"{patients} patient(s) screened, {errors} error(s)")
    return "\n".join(line.rstrip() for line in lines)


def results_csv(rows: Iterable[PatientRow]) -> str:
    """One line per (patient, study): status, ResearchSubject, not-met and unknown ids, error."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["patient", "study", "status", "research_subject", "not_met", "unknown",
                     "error"])
    for row in rows:
        if row.error or row.result is None:
            writer.writerow([row.patient, "", "", "", "", "", row.error or "no result"])
            continue
        for study in row.result.get("studies", []):
            crit = study.get("criteria", [])
            writer.writerow([
                row.patient, study["study"], study["status"],
                row.research_subjects.get(study["study"], ""),
                ";".join(c["id"] for c in crit if c.get("result") == "not-met"),
                ";".join(c["id"] for c in crit if c.get("result") == "unknown"),
                "",
            ])
    return buffer.getvalue()
