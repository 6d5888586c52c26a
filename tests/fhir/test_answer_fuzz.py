"""A lying FHIR server (issue 13): the fault proxy mutates the read batch's answer on its way to
the service, which screens with write-back (POST /screenings?wait=true) and reads (GET
/patients/{id}/eligibility). Mutations: error OperationOutcomes in searchset entries and in
`entry.response.outcome`, missing and foreign subjects, `total` disagreeing with the entries,
deep nesting, truncated bodies.

Properties: no 5xx but the documented 502/503; a bad read writes nothing; a read the service
accepts gives the statuses of the patient's own record (the oracle), minus exactly what no
longer names the patient, whose ids never show up as evidence."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core.settings import Settings
from tests.support.fault_proxy import Seen, is_transaction
from tests.support.seed_population import AS_OF, oracle

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

BAD_READS = ("error-outcome-entry", "error-response-outcome", "deep-nesting", "truncated")
KINDS = (*BAD_READS, "foreign-subject", "total-disagrees")
DEEP = 50_000


def is_read_batch(seen: Seen) -> bool:
    return seen.method == "POST" and seen.bundle_type == "batch"


def _error_outcome(severity: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": "exception", "diagnostics": "injected"}]}


def _searchsets(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in answer.get("entry", [])
            if isinstance(e.get("resource"), dict)
            and e["resource"].get("resourceType") == "Bundle"]


class Mutation:
    """One mutation of the read batch's answer; remembers what it changed."""

    def __init__(self, kind: str, rng: random.Random, pid: str) -> None:
        self.kind, self.rng, self.pid = kind, rng, pid
        self.applied = False
        self.foreign: set[str] = set()  # Type/id of resources made someone else's

    def __call__(self, payload: bytes) -> bytes:
        answer = json.loads(payload)
        if answer.get("type") != "batch-response":
            return payload
        self.applied = True
        sets = _searchsets(answer)
        rng = self.rng
        if self.kind == "truncated":
            return payload[: rng.randrange(1, len(payload))]
        if self.kind == "deep-nesting":
            target = rng.choice(sets)["resource"]
            target["meta"] = {"tag": "__DEEP__"}
            return json.dumps(answer).encode().replace(
                b'"__DEEP__"', b"[" * DEEP + b"]" * DEEP)
        if self.kind == "error-outcome-entry":
            bundle = rng.choice(sets)["resource"]
            entry: dict[str, Any] = {"resource": _error_outcome(rng.choice(["error", "fatal"]))}
            if rng.random() < 0.5:
                entry["search"] = {"mode": "outcome"}
            entries = bundle.setdefault("entry", [])
            entries.insert(rng.randrange(len(entries) + 1), entry)
        elif self.kind == "error-response-outcome":
            rng.choice(answer["entry"]).setdefault("response", {})["outcome"] = \
                _error_outcome("error")
        elif self.kind == "total-disagrees":
            bundle = rng.choice(sets)["resource"]
            bundle["total"] = len(bundle.get("entry", [])) + rng.randrange(1, 50)
            bundle["link"] = [link for link in bundle.get("link", [])
                              if link.get("relation") != "next"]
        elif self.kind == "foreign-subject":
            owned = [e["resource"] for s in sets for e in s["resource"].get("entry", [])
                     if isinstance(e.get("resource"), dict)
                     and any(k in e["resource"] for k in ("subject", "patient"))]
            for resource in rng.sample(owned, k=min(len(owned), rng.randrange(1, 4))):
                key = "subject" if "subject" in resource else "patient"
                choice = rng.randrange(3)
                if choice == 0:
                    del resource[key]
                else:
                    resource[key] = {"reference": (
                        f"https://evil.example/fhir/Patient/{self.pid}" if choice == 1
                        else "Patient/someone-else")}
                self.foreign.add(f"{resource['resourceType']}/{resource['id']}")
        return json.dumps(answer).encode()


@pytest.fixture
def service(make_app, proxy, tmp_path) -> Any:
    app, _ = make_app(Settings().with_overrides(
        fhir_base_url=proxy.base_url, queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
        fhir_max_retries=0))
    return app


def _evidence(body: dict[str, Any]) -> set[str]:
    return {ref for study in body["studies"] for c in study["criteria"]
            for ref in c.get("evidence", [])}


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 2**32 - 1), write=st.booleans(),
       patient=st.integers(0, 5))
def test_mutated_answers_never_write_from_a_bad_read_nor_answer_an_undocumented_5xx(
        service, proxy, population_once: Callable[[], list[str]], kind, seed, write, patient):
    pid = population_once()[patient]
    expected = oracle(population_once.bundles[pid])  # type: ignore[attr-defined]
    http = service.test_client()
    proxy.clear()
    mutation = Mutation(kind, random.Random(seed), pid)
    proxy.inject("mutate", when=is_read_batch, mutate=mutation)
    before = len(proxy.requests())
    if write:
        answer = http.post("/screenings?wait=true",
                           json={"patients": [pid], "asOf": AS_OF.isoformat()})
    else:
        answer = http.get(f"/patients/{pid}/eligibility?asOf={AS_OF.isoformat()}")
    proxy.clear()
    writes = [s for s in proxy.requests()[before:] if is_transaction(s)]
    status = answer.status_code
    assert mutation.applied
    assert status < 500 or status in (502, 503), answer.get_data(as_text=True)
    if kind in BAD_READS:
        assert status == 502, answer.get_data(as_text=True)
        assert answer.mimetype == "application/problem+json"
        assert writes == []
        return
    if status != 200:  # e.g. `total` disagreeing and no better answer
        assert status == 502 and writes == []
        return
    body = answer.get_json()["result"] if write else answer.get_json()
    assert not (_evidence(body) & mutation.foreign)
    if kind == "total-disagrees" or not mutation.foreign:
        # Read again alone (unmutated) or nothing changed: the record's own statuses.
        assert {s["study"]: s["status"] for s in body["studies"]} == expected


@pytest.fixture
def population_once(population) -> Callable[[], list[str]]:
    """Six seed clones, loaded on first use and shared by every example of the test."""
    loaded: list[str] = []

    def get() -> list[str]:
        if not loaded:
            loaded.extend(population.add(6))
        return loaded

    get.bundles = population.bundles  # type: ignore[attr-defined]
    return get
