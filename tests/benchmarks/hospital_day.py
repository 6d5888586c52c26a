"""A day of a hospital, replayed (issue 21): every change announced to the service as a FHIR
server's rest-hook Subscriptions announce it, before (every change of every subscribed type,
a ResearchSubject for everyone screened) and after (criteria naming the mappings' codes,
candidates only), on real HAPI with its Subscriptions and on the local server (which has no
Subscriptions: the benchmark notifies exactly what the criteria would match).

    .venv/bin/python -m tests.benchmarks.hospital_day [--patients 300] [--changes 1500]
        [--servers local,hapi] [--modes before,after]

Prints, per server and mode: notifications the service received, screenings run, FHIR
requests the service sent, ResearchSubjects written (goal: candidates x studies), seconds from
the last change (a new lupus diagnosis) to its ResearchSubject, service CPU per notification.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from service.core.settings import Settings
from service.fhir.client import FhirClient
from service.fhir.research_subject import RESEARCH_SUBJECT_SYSTEM
from service.fhir.subscriptions import (
    SUBSCRIBED_TYPES,
    SUBSCRIPTION_TAG_SYSTEM,
    code_tokens,
    subscription,
)
from service.mappings import load_mappings
from service.usecases.subscribe import register
from tests.benchmarks.http_service import free_port
from tests.benchmarks.synthetic import REPO_ROOT
from tests.support import hapi_server

SECRET = "hospital-day-notify-secret-0123456789"
LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
LUPUS = 10  # lupus patients among the population
NEW_DIAGNOSES = 3  # patients diagnosed with lupus during the day (the last change is one)
SENDERS = 4
STUDIES = 2


def _obs(pid: str, code: str, value: float, unit: str, day: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"{pid}-{code}-{uuid.uuid4().hex[:6]}",
            "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": LOINC, "code": code}]}, "effectiveDateTime": day,
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}


def _sle(pid: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": f"{pid}-sle-{uuid.uuid4().hex[:6]}",
            "subject": {"reference": f"Patient/{pid}"},
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "code": {"coding": [{"system": SNOMED, "code": "55464009"}]}}


def population(prefix: str, patients: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Every patient: a Patient, a heart rate, a haemoglobin and asthma; LUPUS of them SLE."""
    resources: list[dict[str, Any]] = []
    ids = [f"{prefix}-{i:04d}" for i in range(patients)]
    for i, pid in enumerate(ids):
        resources += [
            {"resourceType": "Patient", "id": pid, "gender": "female",
             "birthDate": f"{2008 + i % 10}-03-01"},
            _obs(pid, "8867-4", 90, "/min", "2026-11-01"),
            _obs(pid, "718-7", 120, "g/L", "2026-11-01"),
            {"resourceType": "Condition", "id": f"{pid}-asthma",
             "subject": {"reference": f"Patient/{pid}"},
             "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                  "code": "J45.909"}]}},
        ]
        if i < LUPUS:
            resources.append(_sle(pid))
    return resources, ids


def day_of_changes(ids: list[str], changes: int, seed: int = 21) -> list[dict[str, Any]]:
    """Vital signs (70 %), blood counts (15 %), registrations (10 %), the lupus patients' lab
    results (5 %), and NEW_DIAGNOSES new lupus diagnoses, the last one last."""
    rng = random.Random(seed)
    today = dt.date(2026, 11, 15).isoformat()
    out: list[dict[str, Any]] = []
    for _ in range(changes - NEW_DIAGNOSES):
        roll, pid = rng.random(), rng.choice(ids)
        if roll < 0.70:
            out.append(_obs(pid, "8867-4", rng.randint(60, 140), "/min", today))
        elif roll < 0.85:
            out.append(_obs(pid, "718-7", rng.randint(90, 140), "g/L", today)
                       if rng.random() < 0.5 else _obs(pid, "26464-8", rng.randint(4, 10),
                                                       "10*9/L", today))
        elif roll < 0.95:
            out.append({"resourceType": "Patient", "id": pid, "gender": "female",
                        "birthDate": "2012-03-01",
                        "telecom": [{"system": "phone", "value": f"555-{rng.randint(0, 9999)}"}]})
        else:
            out.append(_obs(rng.choice(ids[:LUPUS]), "718-7", rng.randint(90, 140), "g/L", today))
    new = ids[LUPUS:LUPUS + NEW_DIAGNOSES]
    for k, pid in enumerate(new[:-1]):
        out.insert((k + 1) * len(out) // NEW_DIAGNOSES, _sle(pid))
    out.append(_sle(new[-1]))
    return out


def _put(base: str, resource: dict[str, Any], session: requests.Session) -> None:
    answer = session.put(f"{base}/{resource['resourceType']}/{resource['id']}", json=resource,
                         headers={"Content-Type": "application/fhir+json"}, timeout=120)
    answer.raise_for_status()


def _load(base: str, resources: list[dict[str, Any]]) -> None:
    with FhirClient(Settings().with_overrides(fhir_base_url=base, fhir_timeout=600)) as client:
        for start in range(0, len(resources), 200):
            client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": r, "request": {"method": "PUT",
                                            "url": f"{r['resourceType']}/{r['id']}"}}
                for r in resources[start:start + 200]]})


def _subjects(base: str, prefix: str) -> int:
    with FhirClient(Settings().with_overrides(fhir_base_url=base, fhir_timeout=600)) as client:
        found = client.search_population("ResearchSubject", {
            "identifier": f"{RESEARCH_SUBJECT_SYSTEM}|", "_count": "500"})
        return sum(1 for r in found
                   if (r.get("individual") or {}).get("reference", "").startswith(
                       f"Patient/{prefix}-"))


def _start_service(base: str, folder: Path, before: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FHIR_", "QUEUE_"))}
    env.update(FHIR_BASE_URL=base, QUEUE_URL=f"sqlite:///{folder / 'queue.sqlite'}",
               FHIR_NOTIFY_SECRET=SECRET, PUBLIC_URL=f"http://127.0.0.1:{port}",
               SCREEN_AS_OF="2026-11-15", PYTHONPATH=str(REPO_ROOT), LOG_LEVEL="WARNING")
    command = [sys.executable, "-m", "tests.benchmarks.day_service", "--port", str(port)]
    process = subprocess.Popen(command + (["--write-for-everyone"] if before else []),
                               cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=(folder / "service.log").open("wb"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if requests.get(f"{url}/_bench", timeout=1).ok:
                return process, url
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("the benchmark service did not start")


def _diagnosed(subject: dict[str, Any]) -> bool:
    """The stored ResearchSubject's `sle-diagnosis` criterion is met."""
    for ext in subject.get("extension") or ():
        if ext.get("url") != "urn:trial-eligibility:extension:criterion":
            continue
        parts = {p.get("url"): p for p in ext.get("extension") or ()}
        if (parts.get("id") or {}).get("valueCode") == "sle-diagnosis":
            return (parts.get("result") or {}).get("valueCode") == "met"
    return False


def _counters(url: str) -> dict[str, Any]:
    return dict(requests.get(f"{url}/_bench", timeout=30).json())


def _subscribe_hapi(base: str, url: str, before: bool) -> list[str]:
    """Before: the six every-change Subscriptions of the earlier `subscribe`; after: today's."""
    settings = Settings().with_overrides(fhir_base_url=base, fhir_timeout=600)
    with FhirClient(settings) as client:
        if before:
            entries = [{"resource": subscription(t, url, SECRET), "request": {
                "method": "PUT", "url": f"Subscription?_tag={SUBSCRIPTION_TAG_SYSTEM}|{t}"}}
                for t in SUBSCRIBED_TYPES]
            answer = client.transaction({"resourceType": "Bundle", "type": "transaction",
                                         "entry": entries})
            refs = [e["response"]["location"].split("/_history")[0] for e in answer["entry"]]
        else:
            registered, _ = register(client, load_mappings(REPO_ROOT / "mappings"), url, SECRET)
            refs = [r.reference for r in registered]
        deadline = time.monotonic() + 120
        for ref in refs:
            rtype, rid = ref.rsplit("/", 2)[-2:]
            while client.read(rtype, rid).get("status") != "active":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{ref} did not become active")
                time.sleep(0.5)
        return [ref.rsplit("/", 2)[-2] + "/" + ref.rsplit("/", 1)[-1] for ref in refs]


def _unsubscribe(base: str, refs: list[str]) -> None:
    with FhirClient(Settings().with_overrides(fhir_base_url=base)) as client:
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "DELETE", "url": ref}} for ref in refs]})


def _matches(before: bool) -> Callable[[dict[str, Any]], bool]:
    """Whether a change would be notified (what HAPI's criteria match)."""
    mappings = load_mappings(REPO_ROOT / "mappings")
    kinds = {"Observation": "observation", "Condition": "condition", "Procedure": "procedure"}
    tokens = {t: set(code_tokens(mappings, k)) for t, k in kinds.items()}

    def match(resource: dict[str, Any]) -> bool:
        rtype = resource["resourceType"]
        if before or rtype not in tokens:
            return True
        codes = [f"{c.get('system')}|{c.get('code')}"
                 for c in (resource.get("code") or {}).get("coding") or ()]
        return any(c in tokens[rtype] or c.split("|")[0] + "|" in tokens[rtype] for c in codes)

    return match


def run_one(server: str, base: str, mode: str, patients: int, changes: int,
            log: Callable[[str], None]) -> dict[str, Any]:
    """One column: load, start the service, subscribe, replay, wait, count."""
    before = mode == "before"
    prefix = f"{mode[:1]}{uuid.uuid4().hex[:5]}"
    resources, ids = population(prefix, patients)
    log(f"{server}/{mode}: loading {patients} patients ({len(resources)} resources) ...")
    _load(base, resources)
    day = day_of_changes(ids, changes)
    with tempfile.TemporaryDirectory() as tmp:
        process, url = _start_service(base, Path(tmp), before)
        try:
            refs = _subscribe_hapi(base, url, before) if server == "hapi" else []
            match = _matches(before)
            start = _counters(url)
            log(f"{server}/{mode}: replaying {len(day)} changes ...")
            last_posted = 0.0

            def send(resource: dict[str, Any], session: requests.Session) -> None:
                _put(base, resource, session)
                if server == "local" and match(resource):  # as HAPI's rest-hook would
                    session.put(f"{url}/fhir-notify/{resource['resourceType']}/{resource['id']}",
                                json=resource, timeout=120,
                                headers={"Authorization": f"Bearer {SECRET}",
                                         "Content-Type": "application/fhir+json"})

            started = time.monotonic()
            sessions = [requests.Session() for _ in range(SENDERS)]
            with ThreadPoolExecutor(SENDERS) as pool:
                list(pool.map(lambda n: send(day[n], sessions[n % SENDERS]),
                              range(len(day) - 1)))
            replay_seconds = time.monotonic() - started
            last_posted = time.monotonic()
            send(day[-1], sessions[0])
            last = day[-1]["subject"]["reference"].split("/")[1]
            token = ",".join(f"{RESEARCH_SUBJECT_SYSTEM}|{k}/{last}"
                             for k in ("refractory-sle-cart", "pediatric-ln-cart"))
            settings = Settings().with_overrides(fhir_base_url=base)
            with FhirClient(settings) as client:
                # Until both studies' ResearchSubjects carry the new diagnosis (before, they
                # may exist already from the patient's earlier changes).
                while sum(_diagnosed(r) for r in client.search(
                        "ResearchSubject", {"identifier": token})) < 2:
                    if time.monotonic() - last_posted > 600:
                        raise RuntimeError("the last change never reached a ResearchSubject")
                    time.sleep(0.2)
            to_subject = time.monotonic() - last_posted
            # Settled: no screening for 10 s (coalescing holds a screening up to 5 s).
            quiet, seen = time.monotonic(), _counters(url)
            while time.monotonic() - quiet < 10:
                time.sleep(1)
                now = _counters(url)
                if (now["screenings"], now["notifications"]) != (
                        seen["screenings"], seen["notifications"]):
                    quiet, seen = time.monotonic(), now
            end = _counters(url)
            if refs:
                _unsubscribe(base, refs)
        finally:
            process.terminate()
            process.wait(30)
    notifications = end["notifications"] - start["notifications"]
    # The candidates the day's notifications concerned: lupus patients with a notified change
    # (a patient nothing was notified about is not screened that day) and the new diagnoses.
    lupus = set(ids[:LUPUS + NEW_DIAGNOSES])
    candidates = len({r["subject"]["reference"].split("/")[1] if "subject" in r else r["id"]
                      for r in day if match(r)} & lupus)
    return {
        "server": server, "mode": mode, "patients": patients, "changes": len(day),
        "notifications": notifications,
        "screenings": end["screenings"] - start["screenings"],
        "fhir_requests": end["fhir_requests"] - start["fhir_requests"],
        "research_subjects": _subjects(base, prefix), "goal": candidates * STUDIES,
        "last_change_to_subject_s": round(to_subject, 1),
        "replay_s": round(replay_seconds, 1),
        "service_cpu_s": round(end["cpu_seconds"] - start["cpu_seconds"], 1),
        "cpu_ms_per_notification": round(
            1000 * (end["cpu_seconds"] - start["cpu_seconds"]) / max(1, notifications), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--changes", type=int, default=1500)
    parser.add_argument("--servers", default="local,hapi")
    parser.add_argument("--modes", default="before,after")
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    rows = []
    for server in args.servers.split(","):
        if server == "hapi":
            log("starting HAPI (hapi/) ...")
            hapi = hapi_server.start(timeout=600)
            base = hapi.base_url
        else:
            from localfhir import start_local_server

            local = start_local_server()
            base = local.base_url
        try:
            for mode in args.modes.split(","):
                rows.append(run_one(server, base, mode, args.patients, args.changes, log))
                log(str(rows[-1]))
        finally:
            (hapi if server == "hapi" else local).stop()
    print(f"command: python -m tests.benchmarks.hospital_day {' '.join(argv or sys.argv[1:])}")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; date {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    keys = ["notifications", "screenings", "fhir_requests", "research_subjects", "goal",
            "last_change_to_subject_s", "service_cpu_s", "cpu_ms_per_notification", "replay_s"]
    print("| server | mode | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for row in rows:
        print(f"| {row['server']} | {row['mode']} | "
              + " | ".join(str(row[k]) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
