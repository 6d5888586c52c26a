"""The SLEDAI-2K worksheet: lab descriptors pre-filled from the record, saved as a score."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext

from service.accounts.form_tokens import TOKEN_RE, new_form_token
from service.engine import sledai, sledai_labs
from service.engine.record import build_record
from service.fhir.confirmations import create_with_provenance, created_reference, sledai_observation
from service.fhir.queries import record_queries
from service.fhir.record_read import record_resources
from service.web.pages import bp, pages
from service.web.pages.patient import _form_date, _rescreen, author, patient_id_or_404
from service.web.pages.signin import coordinator, signed_in
from service.web.pages.subjects import patient_name
from service.web.services import services

log = logging.getLogger(__name__)


def findings_for(pid: str) -> dict[str, sledai_labs.Finding]:
    """The lab descriptors of the patient's record: the engine's own record read (every mapped
    code, one batch) and the engine's own function, so the worksheet and the `sledai-2k`
    reason agree."""
    state = pages()
    screener = services().screener
    client = screener.client()
    queries = record_queries(pid, screener.mappings.observation_codes(),
                             page_size=client.settings.fhir_page_size)
    resources = record_resources(client.run_queries(queries), pid, client.settings.fhir_base_url)
    record = build_record(resources, screener.mappings, pid)
    return sledai_labs.lab_findings(record, state.today(), state.settings.sledai_window_days)


@bp.route("/patients/<raw_id>/sledai")
@signed_in
def sledai_worksheet(raw_id: str) -> Any:
    """The worksheet: 24 descriptors with weights; lab ones ticked when the record shows them."""
    pid = patient_id_or_404(raw_id)
    patient = services().screener.client().read("Patient", pid)
    findings = findings_for(pid)
    total, _ = sledai.lower_bound(findings)
    return render_template(
        "sledai.html", pid=pid, name=patient_name(patient), descriptors=sledai.DESCRIPTORS,
        findings=findings, lab_total=total, today=pages().today().isoformat(),
        window=pages().settings.sledai_window_days, form_token=new_form_token(),
    )


@bp.route("/patients/<raw_id>/sledai", methods=["POST"])
@coordinator
def sledai_save(raw_id: str) -> Any:
    """Save the score (Observation + Provenance), then re-screen."""
    pid = patient_id_or_404(raw_id)
    day = _form_date(request.form.get("date"))
    ticked = set(request.form.getlist("descriptor")) & set(sledai.BY_KEY)
    findings = findings_for(pid)
    derived = [ref for key in sorted(ticked) if key in findings for ref in findings[key].evidence]
    scored = [(d.key, d.label, d.weight, d.key in ticked) for d in sledai.DESCRIPTORS]
    who = author()
    resource = sledai_observation(patient_id=pid, when=day, author=who, scored=scored,
                                  derived_from=derived, note=request.form.get("note", ""))
    token, tokens = request.form.get("form_token", ""), pages().form_tokens
    if not TOKEN_RE.fullmatch(token):
        abort(400, gettext("The form is incomplete: reload the page and try again."))
    if not tokens.claim(token, pages().clock().timestamp()):
        flash(gettext("This form was already sent: the score was recorded once, not again."),
              "info")
        return redirect(url_for("pages.patient_page", raw_id=pid))
    try:
        answer = services().screener.client().transaction(
            create_with_provenance(resource, who, pages().clock()))
    except BaseException:
        tokens.release(token)  # nothing was recorded: the same form may be sent again
        raise
    ref = created_reference(answer)
    log.info("user %s recorded a SLEDAI-2K score for Patient/%s as %s", who.name, pid, ref)
    flash(gettext("SLEDAI-2K %(score)s recorded (%(ref)s).", score=resource["valueInteger"],
                  ref=ref) + " " + _rescreen(pid), "success")
    return redirect(url_for("pages.patient_page", raw_id=pid))
