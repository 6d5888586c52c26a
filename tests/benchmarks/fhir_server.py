"""The benchmarks' FHIR side: start the local server, load data, count requests by kind."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

import requests

import localfhir
from service.core.settings import Settings
from service.fhir.client import FhirClient
from tests.benchmarks import synthetic

LOAD_BUNDLE_RESOURCES = 2000  # resources per load transaction (a request body of a few MB)


def start_server() -> localfhir.LocalServer:
    """Start localfhir on a free loopback port."""
    return localfhir.start_local_server()


def settings_for(base_url: str, **overrides: Any) -> Settings:
    """Default settings pointed at the benchmark's FHIR server (queue in memory)."""
    return Settings().with_overrides(fhir_base_url=base_url, queue_url="memory://", **overrides)


class CountingSession(requests.Session):
    """A requests.Session that tallies FHIR requests as reads or writes.

    A batch Bundle of GETs is a read; a transaction, PUT, POST of a resource or DELETE is a write.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kind = "read"
        if method.upper() not in ("GET", "HEAD"):
            data = kwargs.get("data") or b""
            body = data if isinstance(data, bytes) else str(data).encode()
            is_batch = b'"type":"batch"' in body[:200] and b'"method":"GET"' in body
            kind = "read" if is_batch and b'"method":"PUT"' not in body and \
                b'"method":"POST"' not in body and b'"method":"DELETE"' not in body else "write"
        with self._lock:
            self.counts[kind] += 1
        return super().request(method, url, *args, **kwargs)

    def take(self) -> dict[str, int]:
        """Counts since the last call, then start again from zero."""
        with self._lock:
            out = {"read": self.counts["read"], "write": self.counts["write"]}
            self.counts.clear()
        return out


def load_population(client: FhirClient, records: Iterable[list[dict[str, Any]]]
                    ) -> tuple[int, list[str]]:
    """Create the records with transaction Bundles of about LOAD_BUNDLE_RESOURCES resources.

    Returns the number of resources created and the ids the server gave the Patients.
    """
    total = 0
    ids: list[str] = []
    batch: list[list[dict[str, Any]]] = []
    size = 0

    def send() -> None:
        answer = client.transaction(synthetic.transaction(batch))
        for entry in answer.get("entry") or ():
            location = str((entry.get("response") or {}).get("location") or "")
            if location.startswith("Patient/"):
                ids.append(location.split("/")[1])

    for record in records:
        batch.append(record)
        size += len(record)
        if size >= LOAD_BUNDLE_RESOURCES:
            send()
            total += size
            batch, size = [], 0
    if batch:
        send()
        total += size
    return total, ids


def patient_ids(client: FhirClient) -> list[str]:
    """Every Patient id on the server (the listing `screen --all` makes)."""
    return [
        r["id"] for r in client.search("Patient", {"_count": "500", "_elements": "id"})
        if r.get("resourceType") == "Patient"
    ]


def delete_research_subjects(client: FhirClient) -> int:
    """Delete every ResearchSubject so the next screening run writes as the first one did."""
    ids = [r["id"] for r in client.search("ResearchSubject", {"_count": "1000",
                                                               "_elements": "id"})]
    for start in range(0, len(ids), 1000):
        client.batch({
            "resourceType": "Bundle", "type": "batch",
            "entry": [{"request": {"method": "DELETE", "url": f"ResearchSubject/{rid}"}}
                      for rid in ids[start:start + 1000]],
        })
    return len(ids)
