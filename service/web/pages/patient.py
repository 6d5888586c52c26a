"""The patient page `/patients/{id}`: both studies side by side, confirmations, workflow."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext

from service.accounts.form_tokens import TOKEN_RE, new_form_token
from service.fhir import progress
from service.fhir import research_subject as rs
from service.fhir.confirmations import (
    CONSENT_POLICY_PREFIX,
    CRITERION_SYSTEM,
    SCORE_SYSTEM,
    Author,
    ConfirmationError,
    confirmation_observation,
    consent_resource,
    create_with_provenance,
    created_reference,
    entered_in_error,
    workflow_update,
    written_by_service,
)
from service.fhir.errors import FhirError, FhirNotFound, FhirTemporaryError
from service.fhir.queries import FHIR_ID, batch_bundle, normalize_patient_id
from service.mappings.studies import manual_parts
from service.web.pages import bp, pages
from service.web.pages.evidence import Evidence, summarize
from service.web.pages.signin import coordinator, current_user, signed_in
from service.web.pages.subjects import Row, label, row_of, study_key_of
from service.web.pages.wording import criterion as criterion_name
from service.web.pages.wording import progress_reason, reason_error_words
from service.web.pages.wording import status as status_words
from service.web.pages.worklist import study_refs
from service.web.services import services

log = logging.getLogger(__name__)
MAX_EVIDENCE = 200  # evidence resources fetched for one page (one batch)


def patient_id_or_404(raw: str) -> str:
    """The FHIR id in the URL, or 404 (nothing that is not an id reaches the FHIR server)."""
    try:
        return normalize_patient_id(raw)
    except ValueError:
        abort(404)


def per_study(crit: Any) -> bool:
    """Whether a manual criterion is confirmed per study (the mapping says; consent always)."""
    if crit.rule == "consent":
        return True
    # The mapping's `scope` (docs/write-back.md "Recording what a person confirms"): "patient"
    # or "study".
    return crit.params.get("scope") == "study"


def author() -> Author:
    """The signed-in user as the author of a write."""
    user = current_user()
    assert user is not None
    return Author(name=user.name, display=user.display)


def _fetch_evidence(refs: list[str]) -> dict[str, Evidence]:
    client = services().screener.client()
    wanted = [r for r in dict.fromkeys(refs) if r.count("/") == 1][:MAX_EVIDENCE]
    if not wanted:
        return {}
    answer = client.batch(batch_bundle(wanted))
    out = {}
    for ref, entry in zip(wanted, answer.get("entry") or [], strict=False):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        ok = isinstance(resource, Mapping) and resource.get("resourceType") == ref.split("/")[0]
        out[ref] = summarize(ref, resource if ok else None)
    return out


def _confirmations(pid: str) -> list[dict[str, Any]]:
    """Confirmations, consents and scores recorded for the patient, newest first."""
    client = services().screener.client()
    manual = sorted({p.id for s in services().screener.mappings.studies.values()
                     for c in s.criteria for p in manual_parts(c)})
    codes = ",".join([f"{CRITERION_SYSTEM}|{m}" for m in manual]
                     + [f"{SCORE_SYSTEM}|sledai-2k", f"{SCORE_SYSTEM}|eular-acr-2019"])
    found = list(client.search("Observation", [("subject", f"Patient/{pid}"), ("code", codes)]))
    found += list(client.search("Consent", [("patient", f"Patient/{pid}")]))
    items = []
    for r in found:
        who = ", ".join(str(p.get("display") or (p.get("identifier") or {}).get("value") or "")
                        for p in r.get("performer") or () if isinstance(p, Mapping))
        coding = next(iter((r.get("code") or {}).get("coding") or [{}]))
        if r.get("resourceType") == "Consent":
            policies = [str(p.get("uri") or "") for p in r.get("policy") or ()]
            study = next((p.removeprefix(CONSENT_POLICY_PREFIX) for p in policies
                          if p.startswith(CONSENT_POLICY_PREFIX)), "")
            what, answer = "consent", {"active": "signed", "rejected": "refused"}.get(
                str(r.get("status")), str(r.get("status")))
        else:
            study = ", ".join(str(f.get("display") or f.get("reference"))
                              for f in r.get("focus") or ())
            what = str(coding.get("code") or "")
            value = r.get("valueBoolean", r.get("valueInteger"))
            answer = {True: "met", False: "not met"}.get(value, str(value)) \
                if isinstance(value, bool) else f"score {value}"
        items.append({
            "ref": f"{r['resourceType']}/{r.get('id')}", "what": label(what), "answer": answer,
            "date": str(r.get("effectiveDateTime") or r.get("dateTime") or "")[:10],
            "who": who or "not recorded", "study": study, "status": r.get("status"),
            "undone": r.get("status") == "entered-in-error",
            # Only what this service wrote can be undone here; the hospital's own are read-only.
            "ours": written_by_service(r),
            "note": "; ".join(str(n.get("text")) for n in r.get("note") or ()),
        })
    items.sort(key=lambda i: str(i["date"]), reverse=True)
    items.sort(key=lambda i: bool(i["undone"]))  # stable: undone ones last, newest first
    return items


def subjects_of(pid: str) -> tuple[dict[str, Row], Mapping[str, Any] | None]:
    """study key -> Row of the patient's stored ResearchSubjects, and the Patient."""
    client = services().screener.client()
    rows: dict[str, Row] = {}
    patient = None
    resources = list(client.search("ResearchSubject", [
        ("patient", f"Patient/{pid}"), ("_include", "ResearchSubject:individual")]))
    for r in resources:
        if r.get("resourceType") == "Patient":
            patient = r
    for r in resources:
        if r.get("resourceType") != "ResearchSubject":
            continue
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
            patient = screener.client().read("Patient", pid)
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
                        "history": progress.history(rows[key].resource) if key in rows else []})
    from service.web.pages.subjects import deceased_date, is_deceased, patient_name

    # The Patient resource says it; else a stored screening found it (the Patient unread).
    deceased_on = deceased_date(patient)
    deceased = is_deceased(patient) or any(row.deceased for row in rows.values())
    return render_template(
        "patient.html", pid=pid, name=patient_name(patient), patient=patient,
        deceased=deceased, deceased_on=deceased_on,
        studies=studies, evidence=evidence, confirmations=_confirmations(pid),
        workflow_statuses=rs.WORKFLOW_STATUSES, reasons=progress.REASONS,
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
        day = date.fromisoformat((raw or "").strip())
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
    mappings = services().screener.mappings
    key = request.form.get("study", "")
    crit_id = request.form.get("criterion", "")
    study = mappings.studies.get(key)
    crit = next((p for c in study.criteria for p in manual_parts(c) if p.id == crit_id),
                None) if study else None
    if study is None or crit is None:
        abort(400, gettext("Unknown study or criterion that is not confirmed by a person."))
    said = request.form.get("answer") or ""
    # An exclusion's form asks whether the condition is present; "present" records `true`
    # (the condition holds, so the patient is excluded), "absent" records `false`.
    answer = {"present": "met", "absent": "not-met"}.get(said, said)
    if answer not in ("met", "not-met"):
        abort(400, gettext("Choose met or not met."))
    day = _form_date(request.form.get("date"))
    note = request.form.get("note", "")[:2000]
    # Nothing is written about a patient the FHIR server does not have (404 page otherwise).
    services().screener.client().read("Patient", pid)
    token = request.form.get("form_token", "")
    if not TOKEN_RE.fullmatch(token):
        abort(400, gettext("The form is incomplete: reload the page and try again."))
    tokens = pages().form_tokens
    if not tokens.claim(token, pages().clock().timestamp()):
        # A second submit of the same form (double click, reload, back + send): written once.
        flash(gettext("This form was already sent: it was recorded once, not again."), "info")
        return redirect(url_for("pages.patient_page", raw_id=pid) + f"#study-{key}")
    try:
        ref = _record(pid, key, study, crit, answer == "met", day, note)
    except BaseException:
        tokens.release(token)  # nothing was recorded: the same form may be sent again
        raise
    shown = {"present": gettext("present"), "absent": gettext("absent")}.get(said) or (
        gettext("met") if answer == "met" else gettext("not met"))
    flash(gettext("Recorded: %(name)s %(answer)s (%(ref)s).", name=criterion_name(crit.id),
                  answer=shown, ref=ref)
          + " " + _rescreen(pid), "success")
    return redirect(url_for("pages.patient_page", raw_id=pid) + f"#study-{key}")


def _record(pid: str, key: str, study: Any, crit: Any, met: bool, day: date, note: str) -> str:
    """Write one confirmation with its Provenance; its reference."""
    who = author()
    answer = "met" if met else "not-met"
    if crit.rule == "consent":
        resource = consent_resource(patient_id=pid, study_key=key, signed=answer == "met",
                                    when=day, author=who, note=note)
    else:
        scope = (study_refs()[key], study.title) if per_study(crit) else None
        resource = confirmation_observation(
            patient_id=pid, criterion_id=crit.id, criterion_text=crit.text,
            met=answer == "met", when=day, author=who, note=note, study=scope)
    answer_bundle = services().screener.client().transaction(
        create_with_provenance(resource, who, pages().clock()))
    ref = created_reference(answer_bundle)
    log.info("user %s recorded %s (%s) for Patient/%s as %s", who.name, crit.id, key, pid, ref)
    return ref


def _owned_confirmation(resource: Mapping[str, Any], pid: str) -> bool:
    subject = (resource.get("subject") or resource.get("patient") or {}).get("reference")
    if subject != f"Patient/{pid}":
        return False
    # Checked here, not only by hiding the button: the hospital's own records are never undone.
    return written_by_service(resource)


@bp.route("/patients/<raw_id>/undo", methods=["POST"])
@coordinator
def undo(raw_id: str) -> Any:
    """Mark a confirmation entered-in-error (nothing is deleted), then re-screen."""
    pid = patient_id_or_404(raw_id)
    kind, _, rid = request.form.get("ref", "").partition("/")
    if kind not in ("Observation", "Consent") or not FHIR_ID.fullmatch(rid):
        abort(400, gettext("Not a confirmation."))
    client = services().screener.client()
    resource = client.read(kind, rid)
    if not _owned_confirmation(resource, pid):
        abort(400, gettext("Not a confirmation of this patient recorded through this service: "
                           "records the hospital made are changed in the hospital's own system."))
    who = author()
    try:
        client.transaction(entered_in_error(resource, who, pages().clock()))
    except ConfirmationError as exc:
        abort(400, str(exc))
    log.info("user %s marked %s/%s entered-in-error for Patient/%s", who.name, kind, rid, pid)
    flash(gettext("Undone: %(ref)s is marked entered-in-error.", ref=f"{kind}/{rid}") + " "
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
    if key not in services().screener.mappings.studies:
        abort(400, gettext("Unknown study."))
    # A person sets a workflow status or clears theirs ("computed"); the computed statuses
    # (eligible, ...) are the screening's, never stored as a person's decision.
    if status not in rs.WORKFLOW_STATUSES and status != "computed":
        abort(400, gettext("Unknown workflow status."))
    if not seen:
        abort(400, gettext("The form does not say which version of the record it changes: "
                           "reload the page and try again."))
    rows, _ = subjects_of(pid)
    row = rows.get(key)
    if row is None:
        abort(400, gettext("Screen the patient before setting a workflow status."))
    if seen != row.version:
        # The record changed since the page was shown: nothing is overwritten.
        return _stale(pid, key, row, seen)
    if status == "computed":
        status = row.computed or ""
    criteria = [c.id for c in services().screener.mappings.studies[key].criteria]
    try:
        reason = progress.reason_for(status, request.form.get("reason", ""),
                                     request.form.get("why", ""),
                                     request.form.get("criterion", ""), criteria)
    except progress.ReasonError as exc:
        abort(400, reason_error_words(exc))
    who = author()
    try:
        # If-Match carries the version the person saw, not one read during this request.
        seen_resource = {**row.resource, "meta": {**(row.resource.get("meta") or {}),
                                                  "versionId": seen}}
        services().screener.client().transaction(
            workflow_update(seen_resource, status, who, pages().clock(), reason))
    except FhirError as exc:
        if getattr(exc, "status", None) in (409, 412):
            rows, _ = subjects_of(pid)
            return _stale(pid, key, rows.get(key) or row, seen)
        raise
    log.info("user %s set %s workflow status of Patient/%s to %s (%s)", who.name, key, pid,
             status, reason.code if reason else "no reason")
    message = gettext("%(study)s: workflow status is now %(status)s.", study=key,
                      status=status_words(status))
    if reason is not None:
        message += " " + gettext("Reason: %(reason)s", reason=progress_reason(reason))
    flash(message, "success")
    return redirect(url_for("pages.patient_page", raw_id=pid) + f"#study-{key}")


def _last_person_change(subject_ref: str) -> tuple[str, str] | None:
    """(who, when) of the newest Provenance on the ResearchSubject, if any."""
    found = services().screener.client().search("Provenance", [("target", subject_ref)])
    newest = max((p for p in found if p.get("resourceType") == "Provenance"),
                 key=lambda p: str(p.get("recorded") or ""), default=None)
    if newest is None:
        return None
    agents = [a.get("who") or {} for a in newest.get("agent") or () if isinstance(a, Mapping)]
    who = ", ".join(str(w.get("display") or (w.get("identifier") or {}).get("value") or "")
                    for w in agents if isinstance(w, Mapping)) or "someone"
    return who, str(newest.get("recorded") or "")[:16].replace("T", " ")


def _stale(pid: str, key: str, row: Row, seen: str) -> Any:
    """409: the form was made from an older version; say who changed what, change nothing."""
    log.info("stale workflow form for %s of Patient/%s (version %s, now %s): nothing changed",
             key, pid, seen[:20], row.version)
    return render_template(
        "stale.html", pid=pid, study=key, row=row, seen=seen,
        person=_last_person_change(row.subject_ref),
    ), 409


@bp.route("/patients/<raw_id>/screen", methods=["POST"])
@coordinator
def screen_again(raw_id: str) -> Any:
    """Screen the patient again now and show the result."""
    pid = patient_id_or_404(raw_id)
    flash(_rescreen(pid), "success")
    return redirect(url_for("pages.patient_page", raw_id=pid))
