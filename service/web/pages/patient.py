"""The patient page `/patients/{id}`: both studies side by side, confirmations, workflow."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext

from service.accounts.form_tokens import new_form_token
from service.core.dates import calendar_date
from service.fhir.errors import FhirError, FhirNotFound, FhirTemporaryError
from service.fhir.ids import normalize_patient_id
from service.mappings.studies import manual_parts
from service.usecases import confirm as confirming
from service.usecases import patient_view, workflow_status
from service.usecases import undo as undoing
from service.usecases.confirm import Author, per_study
from service.usecases.errors import Refused, StaleRecord
from service.usecases.subject_rows import Row, label, row_of, study_key_of
from service.web.pages import bp, pages
from service.web.pages.evidence import Evidence, summarize
from service.web.pages.form_once import claim_form_token
from service.web.pages.refusals import refusal_words
from service.web.pages.signin import coordinator, current_user, signed_in
from service.web.pages.wording import criterion as criterion_name
from service.web.pages.wording import progress_reason, reason_error_words
from service.web.pages.wording import status as status_words
from service.web.services import services

log = logging.getLogger(__name__)
MAX_EVIDENCE = 200  # evidence resources fetched for one page (one batch)


def patient_id_or_404(raw: str) -> str:
    """The FHIR id in the URL, or 404 (nothing that is not an id reaches the FHIR server)."""
    try:
        return normalize_patient_id(raw)
    except ValueError:
        abort(404)


def read_patient(pid: str) -> dict[str, Any]:
    """The Patient (the 404 page when the FHIR server has none)."""
    return patient_view.read_patient(services().screener, pid)


def author() -> Author:
    """The signed-in user as the author of a write."""
    user = current_user()
    assert user is not None
    return Author(name=user.name, display=user.display)


def _fetch_evidence(refs: list[str]) -> dict[str, Evidence]:
    found = patient_view.evidence(services().screener, refs, MAX_EVIDENCE)
    return {ref: summarize(ref, resource) for ref, resource in found.items()}


def _confirmations(pid: str) -> list[Any]:
    """Confirmations, consents and scores recorded for the patient, newest first."""
    return [replace(d, what=label(d.what)) for d in patient_view.decisions(services().screener,
                                                                             pid)]


def subjects_of(pid: str) -> tuple[dict[str, Row], Mapping[str, Any] | None]:
    """study key -> Row of the patient's stored ResearchSubjects, and the Patient."""
    subjects, patient = patient_view.stored_subjects(services().screener, pid)
    rows: dict[str, Row] = {}
    for r in subjects:
        key = study_key_of(r)
        row = row_of(r, {pid: patient} if patient else {})
        if key and row is not None:
            rows[key] = row
    return rows, patient


@bp.route("/patients/<raw_id>")
@signed_in
def patient_page(raw_id: str) -> Any:
    """Every study's criteria for one patient, with evidence, confirmations and workflow."""
    pid = patient_id_or_404(raw_id)
    screener = services().screener
    rows, patient = subjects_of(pid)
    if patient is None:
        try:
            patient = read_patient(pid)
        except FhirNotFound:
            abort(404)
    evidence = _fetch_evidence([ref for row in rows.values() for c in row.criteria
                                for ref in c.evidence])
    studies = []
    for key, mapping in screener.mappings.studies.items():
        texts = {c.id: c for c in mapping.criteria}
        studies.append({"key": key, "title": mapping.title, "row": rows.get(key),
                        "mapping": texts,
                        "per_study": {c.id: per_study(c) for c in mapping.criteria},
                        "forms": {c.id: _forms(c) for c in mapping.criteria},
                        "history": (workflow_status.history(rows[key].resource)
                                    if key in rows else [])})
    from service.usecases.subject_rows import deceased_date, is_deceased, patient_name

    # The Patient resource says it; else a stored screening found it (the Patient unread).
    deceased_on = deceased_date(patient)
    deceased = is_deceased(patient) or any(row.deceased for row in rows.values())
    return render_template(
        "patient.html", pid=pid, name=patient_name(patient), patient=patient,
        deceased=deceased, deceased_on=deceased_on,
        studies=studies, evidence=evidence, confirmations=_confirmations(pid),
        workflow_statuses=workflow_status.WORKFLOW_STATUSES, reasons=workflow_status.REASONS,
        today=pages().today().isoformat(),
        form_token=new_form_token,
    )


def _forms(crit: Any) -> list[dict[str, Any]]:
    """One confirmation form per part a person answers (the criterion itself when manual).
    An exclusion's form asks whether the condition is present: its rule describes what
    excludes, so "present" is the part's (or manual exclusion's) `true`."""
    return [{"id": part.id, "text": part.text, "per_study": per_study(part),
             "is_part": part is not crit, "presence": crit.type == "exclusion"}
            for part in manual_parts(crit)]


def _rescreen(pid: str) -> str:
    """Screen the patient now (write-back); queue it when the FHIR server is busy."""
    svc = services()
    try:
        result = svc.screener.screen(pid, as_of=pages().today())
    except FhirTemporaryError:
        svc.queue.enqueue_screening(pid, source="pages")
        return gettext("The FHIR server is busy: the screening is queued and will show up "
                       "shortly.")
    except FhirError as exc:
        # What was recorded stays recorded: say the screening failed instead of a 500.
        log.warning("screening Patient/%s again from a page failed: %s (HTTP %s)", pid,
                    type(exc).__name__, getattr(exc, "status", None))
        return gettext("Screening again failed (the FHIR server did not answer as expected): "
                       "use 'Screen again' later.")
    parts = [gettext("%(study)s: %(status)s", study=s["study"], status=status_words(s["status"]))
             for s in result["result"]["studies"]]
    return gettext("Screened again. %(results)s.", results=gettext("; ").join(parts))


def _form_date(raw: str | None) -> date:
    try:
        day = calendar_date((raw or "").strip())
    except ValueError:
        abort(400, gettext("The date must be YYYY-MM-DD."))
    if day > pages().today() or day.year < 1900:
        abort(400, gettext("The date cannot be after the screening date."))
    return day


@bp.route("/patients/<raw_id>/confirm", methods=["POST"])
@coordinator
def confirm(raw_id: str) -> Any:
    """Record a manual criterion (Observation or Consent + Provenance), then re-screen."""
    pid = patient_id_or_404(raw_id)
    key = request.form.get("study", "")
    crit_id = request.form.get("criterion", "")
    try:
        _, crit = confirming.manual_criterion(services().screener, key, crit_id)
    except Refused as exc:
        abort(400, refusal_words(exc, gettext("This criterion cannot be confirmed here: nothing "
                                              "was recorded. Reload the page and try again.")))
    said = request.form.get("answer") or ""
    # An exclusion's form asks whether the condition is present; "present" records `true`
    # (the condition holds, so the patient is excluded), "absent" records `false`.
    answer = {"present": "met", "absent": "not-met"}.get(said, said)
    if answer not in ("met", "not-met"):
        abort(400, gettext("Choose met or not met."))
    day = _form_date(request.form.get("date"))
    note = request.form.get("note", "")[:2000]
    token = claim_form_token(
        gettext("This form was already sent: it was recorded once, not again."))
    if token is None:
        return redirect(url_for("pages.patient_page", raw_id=pid) + f"#study-{key}")
    tokens = pages().form_tokens
    try:
        ref = confirming.confirm_criterion(
            services().screener, author=author(), patient_id=pid, study_key=key,
            criterion_id=crit_id, met=answer == "met", day=day, note=note, now=pages().clock())
    except BaseException:
        tokens.release(token)  # nothing was recorded: the same form may be sent again
        raise
    shown = {"present": gettext("present"), "absent": gettext("absent")}.get(said) or (
        gettext("met") if answer == "met" else gettext("not met"))
    flash(gettext("Recorded: %(name)s %(answer)s (%(ref)s).", name=criterion_name(crit.id),
                  answer=shown, ref=ref)
          + " " + _rescreen(pid), "success")
    return redirect(url_for("pages.patient_page", raw_id=pid) + f"#study-{key}")


@bp.route("/patients/<raw_id>/undo", methods=["POST"])
@coordinator
def undo(raw_id: str) -> Any:
    """Mark a confirmation entered-in-error (nothing is deleted), then re-screen."""
    pid = patient_id_or_404(raw_id)
    try:
        ref = undoing.undo_confirmation(services().screener, author=author(), patient_id=pid,
                                        ref=request.form.get("ref", ""), now=pages().clock())
    except Refused as exc:
        abort(400, refusal_words(exc, gettext("This confirmation cannot be undone (it may have "
                                              "been undone already): nothing was changed. Reload "
                                              "the page to see what is recorded.")))
    flash(gettext("Undone: %(ref)s is marked entered-in-error.", ref=ref) + " "
          + _rescreen(pid), "success")
    return redirect(url_for("pages.patient_page", raw_id=pid))


@bp.route("/patients/<raw_id>/workflow", methods=["POST"])
@coordinator
def workflow(raw_id: str) -> Any:
    """Set a study's workflow status on the ResearchSubject (re-screens keep it)."""
    pid = patient_id_or_404(raw_id)
    key = request.form.get("study", "")
    status = request.form.get("status", "")
    seen = request.form.get("version", "")
    try:
        status, reason = workflow_status.set_workflow_status(
            services().screener, author=author(), patient_id=pid, study_key=key, status=status,
            seen_version=seen, now=pages().clock(), reason=request.form.get("reason", ""),
            why=request.form.get("why", ""), criterion=request.form.get("criterion", ""))
    except Refused as exc:
        abort(400, refusal_words(exc, gettext("The workflow status cannot be changed: nothing "
                                              "was changed. Reload the page and try again.")))
    except workflow_status.ReasonError as exc:
        abort(400, reason_error_words(exc))
    except StaleRecord as stale:
        # The record changed since the page was shown: nothing is overwritten.
        row = row_of(stale.current, {})
        assert row is not None
        return _stale(pid, key, row, seen)
    message = gettext("%(study)s: workflow status is now %(status)s.", study=key,
                      status=status_words(status))
    if reason is not None:
        message += " " + gettext("Reason: %(reason)s", reason=progress_reason(reason))
    flash(message, "success")
    return redirect(url_for("pages.patient_page", raw_id=pid) + f"#study-{key}")


def _stale(pid: str, key: str, row: Row, seen: str) -> Any:
    """409: the form was made from an older version; say who changed what, change nothing."""
    log.info("stale workflow form for %s of Patient/%s (version %s, now %s): nothing changed",
             key, pid, seen[:20], row.version)
    return render_template(
        "stale.html", pid=pid, study=key, row=row, seen=seen,
        person=patient_view.last_person_change(services().screener, row.subject_ref),
    ), 409


@bp.route("/patients/<raw_id>/screen", methods=["POST"])
@coordinator
def screen_again(raw_id: str) -> Any:
    """Screen the patient again now and show the result."""
    pid = patient_id_or_404(raw_id)
    flash(_rescreen(pid), "success")
    return redirect(url_for("pages.patient_page", raw_id=pid))
