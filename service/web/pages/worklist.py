"""The worklist `/`: per study, the screened patients, closest candidates first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import abort, render_template, request

from service.web.pages import bp, pages
from service.web.pages.signin import current_user, signed_in
from service.web.pages.subjects import Row, row_of
from service.web.services import services

PAGE_SIZE = 50
FHIR_PAGE = 500  # ResearchSubjects per FHIR search page (with their Patients included)
FILTERS = ("all", "eligible", "potential-candidate", "ineligible", "flagged")


def study_refs() -> dict[str, str]:
    """study key -> ResearchStudy reference (found or created once per process)."""
    return services().screener.research_study_refs()


def read_rows(study_ref: str) -> list[Row]:
    """Every ResearchSubject of the study on the FHIR server, with its Patient (paged search)."""
    client = services().screener.client()
    subjects: list[Mapping[str, Any]] = []
    patients: dict[str, Mapping[str, Any]] = {}
    params = [("study", study_ref), ("_include", "ResearchSubject:individual"),
              ("_count", str(FHIR_PAGE))]
    for resource in client.search("ResearchSubject", params):
        if resource.get("resourceType") == "Patient":
            patients[str(resource.get("id"))] = resource
        elif resource.get("resourceType") == "ResearchSubject":
            subjects.append(resource)
    rows = [r for r in (row_of(s, patients) for s in subjects) if r is not None]
    return sorted(rows, key=Row.closeness)


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
    rows = read_rows(study_refs()[key])
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
    )


def _is_new(row: Row, previous: float | None) -> bool:
    from datetime import datetime

    if previous is None or not row.last_updated:
        return False
    try:
        changed = datetime.fromisoformat(row.last_updated.replace("Z", "+00:00"))
    except ValueError:
        return False
    return changed.timestamp() > previous
