"""Trigger figure: signed webhook notifications until every screening is written to FHIR."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import requests

from service.fhir.client import FhirClient
from service.web.webhooks import sign
from tests.benchmarks.http_service import RunningService

SENDERS = 8  # concurrent senders, like an integration engine's delivery pool


def _written(client: FhirClient, patient_ids: Sequence[str]) -> int:
    """(patient, study) pairs that have a ResearchSubject on the FHIR server."""
    pairs: set[tuple[str, str]] = set()
    for start in range(0, len(patient_ids), 100):
        chunk = ",".join(patient_ids[start:start + 100])
        for resource in client.search("ResearchSubject", {"patient": chunk, "_count": "1000"}):
            individual = (resource.get("individual") or {}).get("reference", "")
            study = (resource.get("study") or {}).get("reference", "")
            pairs.add((individual, study))
    return len(pairs)


def candidate_subjects(records: Sequence[Sequence[dict[str, Any]]], mappings: Any) -> int:
    """ResearchSubjects a first screening of these records writes: candidates x their studies."""
    from service.engine.evaluate import evaluate_patient
    from service.usecases.candidacy import is_candidate
    from tests.benchmarks.synthetic import AS_OF

    total = 0
    for record in records:
        evaluation = evaluate_patient(list(record), mappings, AS_OF)
        total += sum(is_candidate(s, mappings.studies[s.study], deceased=evaluation.deceased,
                                  has_subject=False) for s in evaluation.studies)
    return total


def run_triggers(service: RunningService, client: FhirClient, patient_ids: Sequence[str], *,
                 notifications: int, studies: int, timeout: float = 300.0,
                 expected: int | None = None) -> dict[str, Any]:
    """Send `notifications` signed webhooks spread round-robin over the patients; time until
    every patient's ResearchSubjects are on the FHIR server; count the screenings run."""
    secret = service.settings_env["WEBHOOK_SECRET"]
    url = f"{service.url}/webhooks/screening"
    ids = list(patient_ids)
    order = [ids[i % len(ids)] for i in range(notifications)]
    # Only candidates get ResearchSubjects (api.md): the caller says how many; else everyone.
    expected = len(ids) * studies if expected is None else expected
    if _written(client, ids):
        raise RuntimeError("trigger patients already have ResearchSubjects; use fresh patients")
    answers: list[dict[str, Any]] = []
    failures: dict[str, int] = {}
    lock = threading.Lock()
    cursor = iter(range(len(order)))

    def sender() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    n = next(cursor, None)
                if n is None:
                    return
                body = json.dumps({"patient": order[n]}).encode()
                stamp = str(int(time.time()))
                try:
                    answer = session.post(url, data=body, timeout=30, headers={
                        "Content-Type": "application/json", "X-Timestamp": stamp,
                        "X-Signature": sign(secret, stamp, body)})
                    status = answer.status_code
                except requests.RequestException as exc:
                    status, answer = -1, None
                    key = type(exc).__name__
                with lock:
                    if status == 202 and answer is not None:
                        answers.append(answer.json())
                    else:
                        key = str(status) if status != -1 else key
                        failures[key] = failures.get(key, 0) + 1

    started = time.perf_counter()
    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = time.perf_counter() - started
    jobs = {a["job"] for a in answers}
    written = 0
    first_written: float | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        written = _written(client, ids)
        if written and first_written is None:
            first_written = time.perf_counter() - started
        if written >= expected:
            break
        time.sleep(0.1)
    all_written = time.perf_counter() - started
    states: dict[str, int] = {}
    attempts = 0
    with requests.Session() as session:
        for job in jobs:
            status = session.get(f"{service.url}/screenings/{job}", timeout=30).json()
            states[status.get("state", "?")] = states.get(status.get("state", "?"), 0) + 1
            attempts += sum(p.get("attempts", 0) for p in status.get("patients", []))
    return {
        "notifications": notifications,
        "patients": len(ids),
        "accepted": len(answers),
        # 409: a byte-identical signed request (same patient, same second) was refused as a
        # replay; the first one was accepted, so nothing is lost. Not counted as an error.
        "same_second_duplicates": failures.get("409", 0),
        "errors": sum(n for status, n in failures.items() if status != "409"),
        "error_statuses": failures,
        "send_seconds": round(sent, 2),
        "seconds_until_first_written": None if first_written is None else
        round(first_written, 2),
        "seconds_until_all_written": round(all_written, 2) if written >= expected else None,
        "research_subjects_written": written,
        "research_subjects_expected": expected,
        "screenings_run": len(jobs),
        "coalesced_notifications": sum(1 for a in answers if a.get("coalesced")),
        "job_states": states,
        "task_attempts": attempts,
        "coalesce_seconds": float(service.settings_env["COALESCE_SECONDS"]),
        "embedded_workers": int(service.settings_env["EMBEDDED_WORKERS"]),
        "senders": SENDERS,
    }
