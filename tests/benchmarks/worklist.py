"""Worklist figure: a signed-in coordinator's `GET /` at 500 and 5,000 ResearchSubjects a study.

Each patient gets one ResearchSubject per study, built by the service's own builder
(`build_research_subject`) from the engine's evaluation of a synthetic record (half seed-derived
lupus records, half other children), with a mix of workflow statuses a coordinator set. Only
the Patients and the ResearchSubjects are stored: the worklist reads nothing else. The service
runs under gunicorn (a fresh process per size, so its peak RSS is that size's); the FHIR
requests of one view are counted in-process (`FhirClient.request_count`) on the same server.
"""

from __future__ import annotations

import random
import re
import secrets
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from service.core.settings import Settings
from service.engine.evaluate import evaluate_patient
from service.fhir.client import FhirClient
from service.fhir.research_subject import build_research_subject
from service.mappings import Mappings
from service.usecases.screening import ensure_research_studies
from tests.benchmarks import fhir_server as bench_fhir
from tests.benchmarks import synthetic
from tests.benchmarks.http_service import CdsKey, RunningService, start_service
from tests.benchmarks.latency import percentile

COORDINATOR = "bench-coordinator"
SUBJECTS_PER_TRANSACTION = 250
LUPUS_SHARE = 0.5
# Workflow statuses a coordinator set, as shares of the candidates (eligible or potential) ...
CANDIDATE_WORKFLOW = (("screening", 0.08), ("pending-on-study", 0.04), ("on-study", 0.06),
                      ("withdrawn", 0.02), ("not-registered", 0.02))
# ... and of the ineligible: on study, then ineligible at a re-screen (the flagged rows).
INELIGIBLE_ON_STUDY = 0.02
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_COUNT = re.compile(r">All \((\d+)\)<")
READING = "Reading the worklist from the FHIR server"  # the page while the first read runs


def _workflow(computed: str, rng: random.Random) -> str | None:
    roll = rng.random()
    if computed == "ineligible":
        return "on-study" if roll < INELIGIBLE_ON_STUDY else None
    for status, share in CANDIDATE_WORKFLOW:
        if roll < share:
            return status
        roll -= share
    return None


def subjects(records: Sequence[list[dict[str, Any]]], ids: Sequence[str], mappings: Mappings,
             refs: dict[str, str], *, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Every study's ResearchSubject of each record (renamed to the server's Patient id)."""
    rng = random.Random(seed)
    evaluated = datetime(2026, 11, 15, 6, 0, tzinfo=UTC)
    for record, pid in zip(records, ids, strict=True):
        old = next(r["id"] for r in record if r["resourceType"] == "Patient")
        record = synthetic._rename(record, old, pid)  # noqa: SLF001  (the seeds' own rewrite)
        evaluation = evaluate_patient(record, mappings, synthetic.AS_OF, patient_id=pid)
        for study in evaluation.studies:
            status = _workflow(study.status, rng)
            yield build_research_subject(
                study, patient_id=pid, as_of=synthetic.AS_OF, research_study=refs[study.study],
                evaluated_at=evaluated - timedelta(minutes=rng.randint(0, 30 * 24 * 60)),
                existing={"status": status} if status else None)


def load(client: FhirClient, mappings: Mappings, refs: dict[str, str], count: int, *,
         start: int) -> dict[str, Any]:
    """`count` more patients, each with a ResearchSubject per study; counts by status."""
    records = list(synthetic.population(count, lupus_share=LUPUS_SHARE, start=start))
    patients = [[next(r for r in record if r["resourceType"] == "Patient")]
                for record in records]
    _, ids = bench_fhir.load_population(client, patients)
    computed: dict[str, int] = {}
    workflow: dict[str, int] = {}
    written = 0
    for chunk in synthetic.chunks(subjects(records, ids, mappings, refs, seed=start),
                                  SUBJECTS_PER_TRANSACTION):
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "POST", "url": "ResearchSubject"}}
            for r in chunk]})
        written += len(chunk)
        for r in chunk:
            code = next(p["valueCode"] for x in r["extension"] if x["url"].endswith("screening")
                        for p in x["extension"] if p["url"] == "status")
            computed[code] = computed.get(code, 0) + 1
            if r["status"] != code:
                workflow[r["status"]] = workflow.get(r["status"], 0) + 1
    return {"written": written, "computed": computed, "workflow": workflow}


def sign_in(url: str, password: str) -> requests.Session:
    """A Session signed in through the login form (CSRF token included)."""
    session = requests.Session()
    form = session.get(f"{url}/login", timeout=30).text
    found = _TOKEN.search(form)
    if not found:
        raise RuntimeError("no CSRF token on /login")
    answer = session.post(f"{url}/login", data={"username": COORDINATOR, "password": password,
                                                 "csrf_token": found.group(1)},
                          allow_redirects=False, timeout=30)
    if answer.status_code != 302:
        raise RuntimeError(f"sign-in failed: HTTP {answer.status_code}")
    return session


def views(study: str, subjects_per_study: int) -> dict[str, str]:
    """The measured views: first page, a status filter, a later page."""
    later = max(1, min(5, -(-subjects_per_study // 50)))
    return {"first": f"/?study={study}", "filtered": f"/?study={study}&status=eligible",
            "later": f"/?study={study}&page={later}"}


def _worker_peak_rss_mb(service: RunningService) -> float | None:
    # gunicorn forks its worker: the worker's own high-water mark (VmHWM) is the figure.
    pid = service.process.pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        peaks = []
        for child in children:
            status = Path(f"/proc/{child}/status").read_text()
            found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
            if found:
                peaks.append(int(found.group(1)))
        return round(max(peaks) / 1024, 1) if peaks else None
    except OSError:
        return None


def time_views(service: RunningService, password: str, paths: dict[str, str], reps: int
               ) -> dict[str, Any]:
    """Each view `reps` times in turns (first, filtered, later, first, ...): p50/p95 in ms.

    Before them, the first view after start (the full read) is timed once (`cold_ms`).
    """
    session = sign_in(service.url, password)
    latencies: dict[str, list[float]] = {name: [] for name in paths}
    errors = 0
    counted = None
    size_kb = 0.0
    # The first view of a new process reads the whole list: timed on its own, until the list
    # shows (each view waits a few seconds for the read, then says it is still reading and
    # reloads: reloaded at once here).
    started = time.perf_counter()
    first_answer_ms = None
    while True:
        answer = session.get(service.url + paths["first"], timeout=600)
        answer.raise_for_status()
        if first_answer_ms is None:
            first_answer_ms = round((time.perf_counter() - started) * 1000, 1)
        if READING not in answer.text:
            break
    cold_ms = round((time.perf_counter() - started) * 1000, 1)
    for path in paths.values():  # warm-up: one of each, not timed
        session.get(service.url + path, timeout=600)
    for _ in range(reps):
        for name, path in paths.items():
            started = time.perf_counter()
            answer = session.get(service.url + path, timeout=600)
            elapsed = time.perf_counter() - started
            if answer.status_code != 200 or "Worklist" not in answer.text:
                errors += 1
                continue
            latencies[name].append(elapsed * 1000)
            if name == "first":
                found = _COUNT.search(answer.text)
                counted = int(found.group(1)) if found else None
                size_kb = round(len(answer.content) / 1024, 1)
    out: dict[str, Any] = {
        name: {"p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
               "views": len(ms)}
        for name, ms in latencies.items()
    }
    out.update(errors=errors, counted=counted, page_kb=size_kb, cold_ms=cold_ms,
               cold_first_answer_ms=first_answer_ms)
    return out


def count_requests(base_url: str, folder: Path, password: str, paths: dict[str, str]
                   ) -> dict[str, Any]:
    """FHIR requests of each view, in-process (the same app code, Flask's test client)."""
    from service.web.app import create_app

    settings = Settings().with_overrides(
        fhir_base_url=base_url, queue_url=f"sqlite:///{folder / 'count-queue.sqlite'}",
        users_db=folder / "users.sqlite", embedded_workers=0)
    app = create_app(settings)
    client = app.extensions["eligibility"].screener.client()
    browser = app.test_client()
    found = _TOKEN.search(browser.get("/login").get_data(as_text=True))
    assert found, "no CSRF token on /login"
    browser.post("/login", data={"username": COORDINATOR, "password": password,
                                 "csrf_token": found.group(1)})
    app.extensions["eligibility"].screener.research_study_refs()  # once per process
    out: dict[str, Any] = {}
    for label, path in [("cold", paths["first"]), *paths.items()]:
        before = client.request_count
        answer = browser.get(path)
        while answer.status_code == 200 and READING in answer.get_data(as_text=True):
            answer = browser.get(path)  # the first full read outlasted the view's wait
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {answer.status_code}")
        out[label] = client.request_count - before
    client.close()
    return out


def run_worklist(mappings: Mappings, *, small: int, large: int, reps: int,
                 log: Any = print) -> dict[str, Any]:
    """Load `small` then `large` patients x every study; time the views at each size."""
    server = bench_fhir.start_server()
    figures: dict[str, Any] = {"studies": len(mappings.studies), "reps": reps}
    try:
        client = FhirClient(bench_fhir.settings_for(server.base_url))
        refs = ensure_research_studies(client, mappings, synthetic.SEEDS_DIR)
        study = next(iter(mappings.studies))
        figures["study"] = study
        loaded = 0
        computed: dict[str, int] = {}
        workflow: dict[str, int] = {}
        for label, size in (("small", small), ("large", large)):
            log(f"worklist: loading {size} patients x {len(refs)} studies of ResearchSubjects ...")
            started = time.perf_counter()
            mix = load(client, mappings, refs, size - loaded, start=loaded)
            loaded = size
            for total, part in ((computed, mix["computed"]), (workflow, mix["workflow"])):
                for status, n in part.items():
                    total[status] = total.get(status, 0) + n
            load_seconds = time.perf_counter() - started
            paths = views(study, size)
            with tempfile.TemporaryDirectory(prefix="bench-worklist-") as name:
                folder = Path(name)
                password = secrets.token_urlsafe(16)
                from service.accounts.store import Accounts

                Accounts(folder / "users.sqlite").add(COORDINATOR, "coordinator", password)
                service = start_service(
                    server.base_url, folder, cds_key=CdsKey.create(folder),
                    webhook_secret="bench-webhook-secret", coalesce_seconds=1.0,
                    extra_env={"USERS_DB": str(folder / "users.sqlite"),
                               "SESSION_SECRET": secrets.token_urlsafe(32)})
                try:
                    log(f"worklist: {reps} x 3 views at {size} subjects a study ...")
                    timed = time_views(service, password, paths, reps)
                    rss = _worker_peak_rss_mb(service)
                finally:
                    service.stop()
                requests_per_view = count_requests(server.base_url, folder, password, paths)
            figures[label] = {
                "subjects_per_study": size, "subjects_on_server": size * len(refs),
                "load_seconds": round(load_seconds, 1), "computed": dict(computed),
                "workflow": dict(workflow), **timed, "fhir_requests": requests_per_view,
                "service_peak_rss_mb": rss,
            }
        client.close()
    finally:
        server.stop()
    return figures


def main() -> None:
    """Run alone: python -m tests.benchmarks.worklist [--small N] [--large N] [--reps N]."""
    import argparse
    import json

    from service.mappings import load_mappings

    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.worklist")
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--large", type=int, default=5000)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    from tests.benchmarks import report

    started = time.perf_counter()
    figures = run_worklist(load_mappings(Settings().mappings_dir), small=args.small,
                           large=args.large, reps=args.reps)
    print(json.dumps({"machine": report.machine(), "worklist": figures}, indent=2))
    m = report.machine()
    print(f"Machine: {m['nproc']} cores, {m['cpu']}, {m['ram_gb']} GB RAM, {m['os']}, "
          f"Python {m['python']}, Node {m['node']} (commit {m['commit']}); "
          f"{time.perf_counter() - started:.0f} s")
    for name, value, goal, verdict in report.worklist_rows(figures):
        print(f"{name:<52} {value:<70} {goal:<24} {verdict}".rstrip())


if __name__ == "__main__":
    main()
