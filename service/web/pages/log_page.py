"""The prescreening log `/studies/{key}/log` (+ `.csv`): everyone screened, reasons, enrolment."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from typing import Any

from flask import Response, abort, render_template
from flask_babel import gettext
from markupsafe import Markup, escape

from service.usecases import study_funnel
from service.usecases.study_target import enrolment_target
from service.usecases.subject_rows import Row, label
from service.web.access_audit import shown
from service.web.pages import bp
from service.web.pages.signin import signed_in
from service.web.pages.wording import criterion, stage
from service.web.pages.worklist import read_rows, study_refs
from service.web.services import services


def _target(study_ref: str) -> int | None:
    return enrolment_target(services().screener, study_ref)


def _enrolled(row: Row) -> bool:
    return (row.workflow or "").startswith("on-study")


def bar_chart(counts: list[tuple[str, int]], title: str) -> Markup:
    """A horizontal bar chart as inline SVG (presentation attributes only: strict CSP)."""
    if not counts:
        return Markup("")
    width, bar, gap, left = 640, 22, 8, 190
    most = max(n for _, n in counts) or 1
    height = len(counts) * (bar + gap) + gap
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for i, (name, n) in enumerate(counts):
        y = gap + i * (bar + gap)
        w = max(2, round((width - left - 60) * n / most))
        parts.append(
            f'<text x="{left - 8}" y="{y + bar * 0.7:.0f}" text-anchor="end" font-size="14" '
            f'fill="#1b1f24">{escape(name)}</text>'
            f'<rect x="{left}" y="{y}" width="{w}" height="{bar}" fill="#a40e26"></rect>'
            f'<text x="{left + w + 6}" y="{y + bar * 0.7:.0f}" font-size="14" '
            f'fill="#1b1f24">{n}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def progress_bar(done: int, target: int | None) -> Markup:
    """Enrolment against the target as an inline SVG bar."""
    if not target:
        return Markup("")
    width, height = 640, 28
    w = round(width * min(done, target) / target)
    return Markup(
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<title>{escape(gettext("%(done)s of %(target)s enrolled", done=done, target=target))}'
        '</title>'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#eaeef2"></rect>'
        f'<rect x="0" y="0" width="{w}" height="{height}" fill="#116329"></rect></svg>')


def _summary(key: str) -> dict[str, Any]:
    mappings = services().screener.mappings
    if key not in mappings.studies:
        abort(404)
    ref = study_refs()[key]
    rows = read_rows(ref)
    reasons = Counter(c.id for r in rows if r.computed == "ineligible" for c in r.not_met)
    lines = [r.log_line or study_funnel.log_line(r.resource) for r in rows]
    return {
        "key": key,
        "title": mappings.studies[key].title,
        "rows": sorted(rows, key=lambda r: r.patient_id),
        "computed": Counter(r.computed or "not known" for r in rows),
        "workflow": Counter(r.workflow or "none" for r in rows),
        "reasons": [(label(k), n) for k, n in reasons.most_common()],
        "enrolled": sum(_enrolled(r) for r in rows),
        "target": _target(ref),
        "lines": {line.patient_id: line for line in lines},
        "funnel": study_funnel.funnel(lines),
    }


@bp.route("/studies/<key>/log")
@signed_in
def study_log(key: str) -> Any:
    """Everyone screened, statuses, ineligibility reasons as a chart, enrolment vs target."""
    data = _summary(key)
    stages = list(data["funnel"].stages)
    return render_template(
        "log.html", **data,
        funnel_chart=bar_chart([(stage(name), n) for name, n in stages],
                               gettext("Patients reaching each stage of the funnel")),
        chart=bar_chart([(criterion(name), n) for name, n in data["reasons"]],
                        gettext("Ineligible patients by criterion not met")),
        progress=progress_bar(data["enrolled"], data["target"]),
    )


# A spreadsheet runs a cell starting with = + - @ (or tab, CR) as a formula (CSV injection).
# One that splits on ";" "|" or tab instead of "," starts a new cell after any of those, so a
# formula start is neutralised ("'" before it) at the start AND after every separator.
_FORMULA_START = re.compile(r"(?:^|(?<=[,;|\t\r\n]))(?=[=+\-@\t\r])")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return _FORMULA_START.sub("'", text)


@bp.route("/studies/<key>/log.csv")
@signed_in
def study_log_csv(key: str) -> Any:
    """The log as CSV: one row per patient screened."""
    data = _summary(key)
    shown(r.patient_id for r in data["rows"])  # the access audit: every patient exported
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)  # every field quoted, whatever it holds
    writer.writerow(["patient", "name", "computed status", "workflow status", "not met",
                     "unknown", "as of", "last screened",
                     # the columns of a screening and enrolment log
                     "date screened", "eligible", "reason not eligible or not enrolled",
                     "consent date", "enrolment date"])
    lines = study_funnel.with_consent_dates(
        list(data["lines"].values()),
        study_funnel.read_consents(services().screener, list(data["lines"].values())))
    by_patient = {line.patient_id: line for line in lines}
    for r in data["rows"]:
        line = by_patient.get(r.patient_id)
        writer.writerow([_cell(v) for v in (
            r.patient_id, r.patient_name, r.computed, r.workflow or "",
            " ".join(c.id for c in r.not_met), " ".join(c.id for c in r.unknown),
            r.as_of, r.evaluated,
            line.date_screened if line else "", ("yes" if line.eligible else "no") if line else "",
            line.reason if line else "", line.consent_date if line else "",
            line.enrolment_date if line else "")])
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="prescreening-log-{key}.csv"'})
