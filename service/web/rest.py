"""REST blueprint: studies, one patient's eligibility (read-only), screenings with write-back."""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import date
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from service.web import requests_in
from service.web.problems import Problem, problem_from_failure
from service.web.services import services

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__)

MAX_BATCH_PATIENTS = 10_000
WAIT_FOR_PATIENT_SECONDS = 30.0
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_CURSOR = re.compile(r"[0-9]{1,18}", re.ASCII)


@bp.get("/studies")
def list_studies() -> Response:
    """Every study with its criteria."""
    return jsonify({"studies": services().screener.studies_json()})


@bp.get("/patients/<path:patient>/eligibility")
def patient_eligibility(patient: str) -> Response:
    """Evaluate one patient without writing anything."""
    svc = services()
    pid = requests_in.patient_id(patient)
    as_of = requests_in.as_of(request.args.get("asOf")) or svc.clock.today()
    studies = requests_in.study_keys(request.args.getlist("study"), svc.screener.study_keys())
    body = _run(lambda: svc.screener.evaluate(pid, as_of=as_of, studies=studies), pid)
    return jsonify(body)


@bp.post("/screenings")
def create_screening() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    """Screen and write back: one patient synchronously (?wait=true) or a batch job (202)."""
    svc = services()
    body = requests_in.json_body()
    if not isinstance(body, dict):
        raise Problem(400, "The body must be a JSON object with 'patients'.", slug="invalid-body")
    unknown = set(body) - {"patients", "studies", "asOf"}
    if unknown:
        raise Problem(400, f"unknown field {sorted(unknown)[0]!r}.", slug="invalid-body")
    patients = body.get("patients")
    if not isinstance(patients, list) or not patients:
        raise Problem(400, "'patients' must be a non-empty list of Patient ids.",
                      slug="invalid-body")
    if len(patients) > MAX_BATCH_PATIENTS:
        raise Problem(400, f"at most {MAX_BATCH_PATIENTS} patients per job.", slug="invalid-body")
    ids = list(dict.fromkeys(
        requests_in.patient_id(p, field=f"patients[{i}]") for i, p in enumerate(patients)
    ))
    raw_studies = body.get("studies") or []
    if not isinstance(raw_studies, list):
        raise Problem(400, "'studies' must be a list of study keys.", slug="invalid-body")
    studies = requests_in.study_keys(raw_studies, svc.screener.study_keys())
    as_of_raw = body.get("asOf")
    if as_of_raw is not None and not isinstance(as_of_raw, str):
        raise Problem(400, "asOf must be a date YYYY-MM-DD.", slug="invalid-date")
    # Decided here, once: a queued job screens as of the day it was asked for.
    as_of = requests_in.as_of(as_of_raw) or svc.clock.today()

    if requests_in.flag(request.args.get("wait")):
        if len(ids) != 1:
            raise Problem(400, "?wait=true screens exactly one patient; submit batches without it.",
                          slug="invalid-body")
        return jsonify(_screen_now(ids[0], as_of, studies)), 200

    job_id = svc.queue.submit_batch(ids, studies=studies, as_of=as_of)
    location = url_for("api.get_screening", job=job_id)
    return jsonify(svc.queue.job_status(job_id)), 202, {"Location": location}


@bp.get("/screenings/<job>")
def get_screening(job: str) -> Response:
    """Progress of a job; per-patient results and ResearchSubject references once done."""
    cursor = _cursor(request.args.get("cursor"))
    status = services().queue.job_status(job, cursor) if _JOB_ID.fullmatch(job) else None
    if status is None:
        raise Problem(404, "No such screening job.", slug="not-found")
    response = jsonify(status)
    if "next" in status:
        link = url_for("api.get_screening", job=job, cursor=status["next"])
        response.headers["Link"] = f'<{link}>; rel="next"'
    return response


def _cursor(value: str | None) -> int:
    """The page cursor of GET /screenings/{job} (from a `next`); 400 problem when malformed."""
    if value is None:
        return 0
    if not _CURSOR.fullmatch(value):
        raise Problem(400, "cursor must be the 'next' value of a previous answer.",
                      slug="invalid-cursor")
    return int(value)


def _screen_now(pid: str, as_of: date, studies: tuple[str, ...] | None) -> dict[str, Any]:
    """Screen one patient in this request, holding the patient's lock like a queue worker."""
    svc = services()
    owner = f"request:{uuid.uuid4().hex}"
    lock = f"patient:{pid}"
    deadline = time.monotonic() + WAIT_FOR_PATIENT_SECONDS
    while not svc.queue.store.lock(lock, owner, svc.settings.job_lease_seconds):
        if time.monotonic() > deadline:
            raise Problem(503, "This patient is being screened by a worker; retry shortly.",
                          slug="patient-busy", retry_after=5)
        time.sleep(0.2)
    try:
        return _run(lambda: svc.screener.screen(pid, as_of=as_of, studies=studies), pid)
    finally:
        svc.queue.store.unlock(lock, owner)


def _run(call: Any, pid: str) -> Any:
    """Run a screening; a failure (classified by the use case) becomes a problem."""
    from service.usecases.screening_failures import ScreeningFailure

    try:
        return call()
    except ScreeningFailure as failure:
        raise problem_from_failure(failure, patient_id=pid) from None
