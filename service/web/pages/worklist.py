"""The worklist `/`: per study, the screened patients, closest candidates first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, current_app, render_template, request

from service.usecases.subject_rows import Row
from service.usecases.worklist_rows import FIRST_VIEW_WAIT, RowCache, StillReading, study_rows
from service.web.pages import bp, pages
from service.web.pages.signin import current_user, signed_in
from service.web.services import services

PAGE_SIZE = 50
FILTERS = ("all", "eligible", "potential-candidate", "ineligible", "flagged")


def study_refs() -> dict[str, str]:
    """study key -> ResearchStudy reference (found or created once per process)."""
    return services().screener.research_study_refs()


def row_cache() -> RowCache:
    """This process's rows of each study (worklist_rows: changes are read at every view)."""
    cache: RowCache = current_app.extensions.setdefault("worklist_rows", RowCache())
    return cache


def read_rows_as_of(study_ref: str) -> tuple[list[Row], datetime]:
    """Every ResearchSubject of the study as on the FHIR server now, closest first, and when
    the whole list was last read (deletions and Patient names show from then)."""
    return study_rows(row_cache(), services().screener, study_ref, pages().clock())


def read_rows(study_ref: str) -> list[Row]:
    """Every ResearchSubject of the study as on the FHIR server now, closest first."""
    return read_rows_as_of(study_ref)[0]


@bp.errorhandler(StillReading)
def _still_reading(exc: StillReading) -> Any:
    """The first full read of a large study outlasts a page: say so, and reload."""
    key = next((k for k, ref in study_refs().items() if ref == exc.args[0]), "")
    return render_template("reading.html", key=key, every=int(FIRST_VIEW_WAIT)), 200


def _matches(row: Row, wanted: str) -> bool:
    if wanted == "all":
        return True
    if wanted == "flagged":
        return row.flag_on_study_ineligible
    return row.computed == wanted


@bp.route("/")
@signed_in
def worklist() -> Any:
    """One tab per study; rows sorted closest first; status filter; 50 rows a page."""
    mappings = services().screener.mappings
    keys = list(mappings.studies)
    key = request.args.get("study") or keys[0]
    if key not in mappings.studies:
        abort(404)
    wanted = request.args.get("status", "all")
    if wanted not in FILTERS:
        wanted = "all"
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    rows, full_read = read_rows_as_of(study_refs()[key])
    counts = {f: sum(_matches(r, f) for r in rows) for f in FILTERS}
    shown = [r for r in rows if _matches(r, wanted)]
    pages_total = max(1, -(-len(shown) // PAGE_SIZE))
    page = min(page, pages_total)
    user = current_user()
    assert user is not None
    now = pages().clock()
    previous = pages().accounts.swap_visit(user.name, f"worklist:{key}", now.timestamp())
    return render_template(
        "worklist.html",
        studies=[(k, mappings.studies[k].title) for k in keys],
        key=key,
        title=mappings.studies[key].title,
        rows=shown[(page - 1) * PAGE_SIZE: page * PAGE_SIZE],
        counts=counts,
        wanted=wanted,
        filters=FILTERS,
        page=page,
        pages_total=pages_total,
        previous_visit=previous,
        is_new=lambda row: _is_new(row, previous),
        read_at=_utc(now),
        full_read=_utc(full_read),
    )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S UTC")


def _is_new(row: Row, previous: float | None) -> bool:
    if previous is None or not row.last_updated:
        return False
    try:
        changed = datetime.fromisoformat(row.last_updated.replace("Z", "+00:00"))
    except ValueError:
        return False
    return changed.timestamp() > previous
