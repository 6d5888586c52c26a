"""Latency figure: GET /patients/{id}/eligibility under concurrent clients; CDS patient-view."""

from __future__ import annotations

import itertools
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import requests

from service.mappings import Mappings
from service.web.cds_hooks import SERVICE_ID, prefetch_templates
from tests.benchmarks import synthetic
from tests.benchmarks.http_service import CdsKey, RunningService


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _summary(latencies: list[float], errors: int, seconds: float, clients: int
             ) -> dict[str, Any]:
    ms = [x * 1000 for x in latencies]
    return {
        "clients": clients,
        "seconds": round(seconds, 1),
        "requests": len(ms) + errors,
        "errors": errors,
        "requests_per_second": round((len(ms) + errors) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(percentile(ms, 50), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "mean_ms": round(statistics.fmean(ms), 1) if ms else 0.0,
    }


def hammer(send: Callable[[requests.Session, int], requests.Response], *, clients: int,
           seconds: float | None = None, per_client: int | None = None) -> dict[str, Any]:
    """`clients` threads, each with its own Session, sending until the time or count is up.

    A response other than 200, or a transport error, counts as an error (not a latency).
    """
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = [0.0]
    statuses: dict[int, int] = {}

    def client(index: int) -> None:
        with requests.Session() as session:
            start.wait()
            for n in itertools.count():
                if per_client is not None and n >= per_client:
                    return
                if seconds is not None and time.perf_counter() >= deadline[0]:
                    return
                began = time.perf_counter()
                try:
                    ok = send(session, index * 100_003 + n).status_code
                except requests.RequestException:
                    ok = -1
                took = time.perf_counter() - began
                with lock:
                    if ok == 200:
                        latencies.append(took)
                    else:
                        errors[0] += 1
                        statuses[ok] = statuses.get(ok, 0) + 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + (seconds or 0)
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    out = _summary(latencies, errors[0], time.perf_counter() - began, clients)
    if statuses:
        out["error_statuses"] = {str(k): v for k, v in sorted(statuses.items())}
    return out


def build_prefetch(fhir_base_url: str, mappings: Mappings, patient_id: str) -> dict[str, Any]:
    """The CDS prefetch an EHR would send: each discovery template run against the FHIR server."""
    prefetch: dict[str, Any] = {}
    with requests.Session() as session:
        for key, template in prefetch_templates(mappings.observation_codes()).items():
            query = template.replace("{{context.patientId}}", patient_id)
            if "?" in query:
                query += "&_count=1000"
            answer = session.get(f"{fhir_base_url}/{query}", timeout=30,
                                 headers={"Accept": "application/fhir+json"})
            answer.raise_for_status()
            prefetch[key] = answer.json()
    return prefetch


def run_latency(service: RunningService, fhir_base_url: str, mappings: Mappings,
                patient_ids: Sequence[str], cds_patient: str, cds_key: CdsKey, *,
                clients: int, seconds: float, cds_requests: int, cds_seconds: float
                ) -> dict[str, Any]:
    """The REST endpoint under load, then CDS patient-view alone and under load."""
    as_of = synthetic.AS_OF.isoformat()
    ids = list(patient_ids)

    def eligibility(session: requests.Session, n: int) -> requests.Response:
        pid = ids[n % len(ids)]
        return session.get(f"{service.url}/patients/{pid}/eligibility",
                           params={"asOf": as_of}, timeout=60)

    hammer(eligibility, clients=min(clients, 4), per_client=3)  # warm-up: imports, pools
    rest = hammer(eligibility, clients=clients, seconds=seconds)
    rest["patients"] = len(ids)

    audience = f"{service.url}/cds-services/{SERVICE_ID}"
    prefetch = build_prefetch(fhir_base_url, mappings, cds_patient)
    prefetched = sum(len(v.get("entry") or []) if v.get("resourceType") == "Bundle" else 1
                     for v in prefetch.values())
    concurrent_estimate = int(cds_seconds * 200) + clients * 20
    # Tokens are signed before the clock starts so the load generator's RSA signing does
    # not compete with the service for the two cores.
    tokens = iter([cds_key.token(audience) for _ in range(cds_requests + 10
                                                           + concurrent_estimate)])
    token_lock = threading.Lock()

    def patient_view(session: requests.Session, n: int) -> requests.Response:
        with token_lock:
            token = next(tokens, None)
        token = token or cds_key.token(audience)  # more requests than foreseen
        body = {
            "hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/benchmark", "patientId": cds_patient},
            "prefetch": prefetch,
        }
        return session.post(audience, json=body, timeout=60,
                            headers={"Authorization": f"Bearer {token}"})

    hammer(patient_view, clients=1, per_client=5)  # warm-up
    cds_alone = hammer(patient_view, clients=1, per_client=cds_requests)
    cds_loaded = hammer(patient_view, clients=clients, seconds=cds_seconds)
    for figure in (cds_alone, cds_loaded):
        figure["prefetched_resources"] = prefetched
        figure["patient"] = cds_patient
    return {"eligibility": rest, "cds": cds_alone, "cds_concurrent": cds_loaded,
            "server": "gunicorn, service/web/gunicorn_conf.py defaults (1 process, 8 threads)",
            "jwt": f"{cds_key.__class__.__name__}: RS384, issuer allow-listed in CDS_ISSUERS"}
