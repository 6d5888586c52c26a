"""The patient page `/patients/{id}`: both studies side by side, confirmations, workflow."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

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
)
from service.fhir.errors import FhirError, FhirNotFound, FhirTemporaryError
from service.fhir.queries import FHIR_ID, batch_bundle, normalize_patient_id
from service.web.pages import bp, pages
from service.web.pages.evidence import Evidence, summarize
from service.web.pages.signin import coordinator, current_user, signed_in
from service.web.pages.subjects import Row, label, row_of, study_key_of
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
    # The mapping's `scope` (api.md "Manual confirmations"): "patient" or "study".
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
    manual = sorted({c.id for s in services().screener.mappings.studies.values()
                     for c in s.criteria if c.kind == "manual"})
    codes = ",".join([f"{CRITERION_SYSTEM}|{m}" for m in manual] + [f"{SCORE_SYSTEM}|sledai-2k"])
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
                        "per_study": {c.id: per_study(c) for c in mapping.criteria}})
    from service.web.pages.subjects import patient_name

    return render_template(
        "patient.html", pid=pid, name=patient_name(patient), patient=patient,
        studies=studies, evidence=evidence, confirmations=_confirmations(pid),
        workflow_statuses=rs.WORKFLOW_STATUSES, today=pages().today().isoformat(),
    )


def _rescreen(pid: str) -> str:
    """Screen the patient now (write-back); queue it when the FHIR server is busy."""
    svc = services()
    try:
        result = svc.screener.screen(pid, as_of=pages().today())
    except FhirTemporaryError:
        svc.queue.enqueue_screening(pid, source="pages")
        return "The FHIR server is busy: the screening is queued and will show up shortly."
    parts = [f"{s['study']}: {s['status']}" for s in result["result"]["studies"]]
    return "Screened again. " + "; ".join(parts) + "."


def _form_date(raw: str | None) -> date:
    try:
        day = date.fromisoformat((raw or "").strip())
    except ValueError:
        abort(400, "The date must be YYYY-MM-DD.")
    if day > pages().today() or day.year < 1900:
        abort(400, "The date cannot be after the screening date.")
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
    crit = next((c for c in study.criteria if c.id == crit_id), None) if study else None
    if study is None or crit is None or crit.kind != "manual":
        abort(400, "Unknown study or criterion that is not confirmed by a person.")
    answer = request.form.get("answer")
    if answer not in ("met", "not-met"):
        abort(400, "Choose met or not met.")
    day = _form_date(request.form.get("date"))
    note = request.form.get("note", "")[:2000]
    who = author()
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
    flash(f"Recorded: {label(crit.id)} {answer.replace('-', ' ')} ({ref}). " + _rescreen(pid),
          "success")
    return redirect(url_for("pages.patient_page", raw_id=pid) + f"#study-{key}")


def _owned_confirmation(resource: Mapping[str, Any], pid: str) -> bool:
    subject = (resource.get("subject") or resource.get("patient") or {}).get("reference")
    if subject != f"Patient/{pid}":
        return False
    if resource.get("resourceType") == "Consent":
        return True
    systems = {c.get("system") for c in (resource.get("code") or {}).get("coding") or ()}
    return bool(systems & {CRITERION_SYSTEM, SCORE_SYSTEM})


@bp.route("/patients/<raw_id>/undo", methods=["POST"])
@coordinator
def undo(raw_id: str) -> Any:
    """Mark a confirmation entered-in-error (nothing is deleted), then re-screen."""
    pid = patient_id_or_404(raw_id)
    kind, _, rid = request.form.get("ref", "").partition("/")
    if kind not in ("Observation", "Consent") or not FHIR_ID.fullmatch(rid):
        abort(400, "Not a confirmation.")
    client = services().screener.client()
    resource = client.read(kind, rid)
    if not _owned_confirmation(resource, pid):
        abort(400, "Not a confirmation of this patient.")
    who = author()
    try:
        client.transaction(entered_in_error(resource, who, pages().clock()))
    except ConfirmationError as exc:
        abort(400, str(exc))
    log.info("user %s marked %s/%s entered-in-error for Patient/%s", who.name, kind, rid, pid)
    flash(f"Undone: {kind}/{rid} is marked entered-in-error. " + _rescreen(pid), "success")
    return redirect(url_for("pages.patient_page", raw_id=pid))


@bp.route("/patients/<raw_id>/workflow", methods=["POST"])
@coordinator
def workflow(raw_id: str) -> Any:
    """Set a study's workflow status on the ResearchSubject (re-screens keep it)."""
    pid = patient_id_or_404(raw_id)
    key = request.form.get("study", "")
    status = request.form.get("status", "")
    if key not in services().screener.mappings.studies:
        abort(400, "Unknown study.")
    rows, _ = subjects_of(pid)
    row = rows.get(key)
    if row is None:
        abort(400, "Screen the patient before setting a workflow status.")
    if status == "computed":
        status = row.computed or ""
    if status not in rs.WORKFLOW_STATUSES and status not in rs.COMPUTED_STATUSES:
        abort(400, "Unknown workflow status.")
    who = author()
    try:
        services().screener.client().transaction(
            workflow_update(dict(row.resource), status, who, pages().clock()))
    except FhirError as exc:
        if getattr(exc, "status", None) in (409, 412):
            flash("Someone changed this record meanwhile: check it and try again.", "error")
            return redirect(url_for("pages.patient_page", raw_id=pid))
        raise
    log.info("user %s set %s workflow status of Patient/%s to %s", who.name, key, pid, status)
    flash(f"{key}: workflow status is now {status}.", "success")
    return redirect(url_for("pages.patient_page", raw_id=pid) + f"#study-{key}")


@bp.route("/patients/<raw_id>/screen", methods=["POST"])
@coordinator
def screen_again(raw_id: str) -> Any:
    """Screen the patient again now and show the result."""
    pid = patient_id_or_404(raw_id)
    flash(_rescreen(pid), "success")
    return redirect(url_for("pages.patient_page", raw_id=pid))
