"""Loading the seeds into the local FHIR server: idempotent, complete, and screenable."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest

from service.core.settings import Settings
from service.fhir.client import FhirClient
from service.mappings import load_mappings
from service.usecases.screening import screen_patient
from service.usecases.seeding import load_seeds

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
MANIFEST = json.loads((SEEDS / "manifest.json").read_text(encoding="utf-8"))
EXPECTED = json.loads((SEEDS / "expected.json").read_text(encoding="utf-8"))
AS_OF = date.fromisoformat(MANIFEST["asOf"])


def _seed_refs() -> dict[str, set[str]]:
    """resourceType -> ids of every seed resource."""
    out: dict[str, set[str]] = defaultdict(set)
    for rel in MANIFEST["patients"]:
        bundle = json.loads((SEEDS / rel).read_text(encoding="utf-8"))
        for entry in bundle["entry"]:
            out[entry["resource"]["resourceType"]].add(entry["resource"]["id"])
    return out


def _server_ids(client: FhirClient, resource_type: str) -> list[str]:
    return [r["id"] for r in client.search(resource_type, {"_count": "1000"})]


def test_loading_twice_gives_the_same_resources_and_no_duplicates(fresh_fhir_server):
    settings = Settings().with_overrides(fhir_base_url=fresh_fhir_server.base_url)
    with FhirClient(settings) as client:
        first = load_seeds(client, SEEDS)
        second = load_seeds(client, SEEDS)

        assert second.studies == first.studies
        assert second.patients == first.patients
        assert first.created == first.resources and second.created == 0

        studies = list(client.search("ResearchStudy", {}))
        assert sorted(f"ResearchStudy/{s['id']}" for s in studies) == sorted(
            first.studies.values())
        for key, ref in first.studies.items():
            found = list(client.search(
                "ResearchStudy", {"identifier": f"urn:trial-eligibility:study|{key}"}))
            assert [f"ResearchStudy/{s['id']}" for s in found] == [ref]

        for resource_type, ids in _seed_refs().items():
            on_server = _server_ids(client, resource_type)
            assert len(on_server) == len(set(on_server)), resource_type
            assert set(on_server) == ids, resource_type


def test_loading_with_mappings_finds_the_same_studies(fhir_settings):
    mappings = load_mappings(REPO / "mappings")
    with FhirClient(fhir_settings) as client:
        plain = load_seeds(client, SEEDS)
        through_screening = load_seeds(client, SEEDS, mappings=mappings)
    assert through_screening.studies == {k: plain.studies[k] for k in mappings.studies}


def test_loaded_seed_patients_screen_as_expected(fhir_settings):
    """End to end over FHIR: every seed patient read back and evaluated as of the seed date."""
    mappings = load_mappings(REPO / "mappings")
    mismatches = []
    with FhirClient(fhir_settings) as client:
        report = load_seeds(client, SEEDS)
        for pid in report.patients:
            outcome = screen_patient(client, mappings, pid, as_of=AS_OF, write=False)
            for study in outcome.evaluation.studies:
                expected = EXPECTED["patients"][pid]["studies"][study.study]
                statuses = {expected["status"], expected.get("alternativeStatus")}
                if study.status not in statuses:
                    mismatches.append(f"{pid} {study.study}: {study.status}, "
                                      f"expected {expected['status']}")
                for crit in study.criteria:
                    want = expected["criteria"][crit.id]
                    if crit.result not in (want["result"], want.get("alternative")):
                        mismatches.append(f"{pid} {study.study} {crit.id}: {crit.result}, "
                                          f"expected {want['result']} ({crit.reason})")
    assert not mismatches, "\n".join(mismatches)
