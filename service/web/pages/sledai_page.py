"""The SLEDAI-2K worksheet: lab descriptors pre-filled from the record, saved as a score."""

from __future__ import annotations

import logging
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext

from service.accounts.form_tokens import new_form_token
from service.usecases import sledai_worksheet as worksheets
from service.usecases.subject_rows import patient_name
from service.web.pages import bp, pages
from service.web.pages.form_once import claim_form_token
from service.web.pages.patient import _form_date, _rescreen, author, patient_id_or_404, read_patient
from service.web.pages.signin import coordinator, signed_in
from service.web.services import services

log = logging.getLogger(__name__)


@bp.route("/patients/<raw_id>/sledai")
@signed_in
def sledai_worksheet(raw_id: str) -> Any:
    """The worksheet: 24 descriptors with weights; lab ones ticked when the record shows them."""
    pid = patient_id_or_404(raw_id)
    patient = read_patient(pid)
    state = pages()
    sheet = worksheets.worksheet(services().screener, pid, as_of=state.today(),
                                       window_days=state.settings.sledai_window_days)
    return render_template(
        "sledai.html", pid=pid, name=patient_name(patient), descriptors=sheet.descriptors,
        findings=sheet.findings, lab_total=sheet.lab_total, today=state.today().isoformat(),
        window=state.settings.sledai_window_days, form_token=new_form_token(),
    )


@bp.route("/patients/<raw_id>/sledai", methods=["POST"])
@coordinator
def sledai_save(raw_id: str) -> Any:
    """Save the score (Observation + Provenance), then re-screen."""
    pid = patient_id_or_404(raw_id)
    day = _form_date(request.form.get("date"))
    token = claim_form_token(
        gettext("This form was already sent: the score was recorded once, not again."))
    if token is None:
        return redirect(url_for("pages.patient_page", raw_id=pid))
    tokens = pages().form_tokens
    state = pages()
    try:
        ref, total = worksheets.record_score(
            services().screener, author=author(), patient_id=pid, day=day,
            ticked=request.form.getlist("descriptor"), note=request.form.get("note", ""),
            as_of=state.today(), window_days=state.settings.sledai_window_days,
            now=state.clock())
    except BaseException:
        tokens.release(token)  # nothing was recorded: the same form may be sent again
        raise
    flash(gettext("SLEDAI-2K %(score)s recorded (%(ref)s).", score=total, ref=ref) + " "
          + _rescreen(pid), "success")
    return redirect(url_for("pages.patient_page", raw_id=pid))
