"""The 2019 EULAR/ACR classification worksheet `/patients/{id}/classification`."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext

from service.accounts.form_tokens import new_form_token
from service.usecases import classification
from service.usecases.subject_rows import patient_name
from service.web.pages import bp, pages
from service.web.pages.form_once import claim_form_token
from service.web.pages.patient import (
    _form_date,
    _rescreen,
    author,
    patient_id_or_404,
    read_patient,
)
from service.web.pages.signin import coordinator, signed_in
from service.web.services import services

log = logging.getLogger(__name__)


@bp.route("/patients/<raw_id>/classification")
@signed_in
def classification_worksheet(raw_id: str) -> Any:
    """The entry criterion and the weighted items by domain, lab and biopsy items pre-filled."""
    pid = patient_id_or_404(raw_id)
    screener = services().screener
    patient = read_patient(pid)
    sheet = classification.worksheet(screener, pid, pages().today())
    by_domain = [(d, [i for i in sheet.items if i.domain == d.key]) for d in sheet.domains]
    return render_template(
        "classification.html", pid=pid, name=patient_name(patient), sheet=sheet,
        by_domain=by_domain, today=pages().today().isoformat(), form_token=new_form_token(),
    )


@bp.route("/patients/<raw_id>/classification", methods=["POST"])
@coordinator
def classification_save(raw_id: str) -> Any:
    """Record the classification (Observation + Provenance), then re-screen."""
    pid = patient_id_or_404(raw_id)
    day = _form_date(request.form.get("date"))
    token = claim_form_token(gettext(
        "This form was already sent: the classification was recorded once, not again."))
    if token is None:
        return redirect(url_for("pages.patient_page", raw_id=pid))
    tokens = pages().form_tokens
    try:
        saved = classification.record(
            services().screener, pid, as_of=pages().today(), when=day, author=author(),
            entry=request.form.get("entry") == "yes", present=request.form.getlist("item"),
            recorded_at=pages().clock(), note=request.form.get("note", "")[:2000])
    except ValueError:
        tokens.release(token)  # nothing was recorded: the same form may be sent again
        abort(400, gettext("Unknown classification item."))
    except BaseException:
        tokens.release(token)
        raise
    c = saved.classification
    log.info("user %s recorded a 2019 EULAR/ACR classification for Patient/%s as %s",
             author().name, pid, saved.reference)
    recorded = (gettext("2019 EULAR/ACR classification recorded: %(total)s points, classified "
                        "as SLE (%(ref)s).", total=c.total, ref=saved.reference)
                if c.classified else
                gettext("2019 EULAR/ACR classification recorded: %(total)s points, not "
                        "classified as SLE (%(ref)s).", total=c.total, ref=saved.reference))
    flash(recorded + " " + _rescreen(pid), "success")
    return redirect(url_for("pages.patient_page", raw_id=pid))
