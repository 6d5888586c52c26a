"""Seed patients cloned under ids of a test's own, loaded into a FHIR server, and the status
each study gets from the complete record read straight from the file (the oracle)."""

from __future__ import annotations

import json
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from service.core.settings import REPO_ROOT, Settings
from service.engine.evaluate import evaluate_patient
from service.fhir.client import FhirClient
from service.mappings import Mappings

SEEDS_DIR = REPO_ROOT / "seeds"
AS_OF = date.fromisoformat(json.loads((SEEDS_DIR / "manifest.json").read_text())["asOf"])
SEED_FILES = sorted((SEEDS_DIR / "patients").glob("*.json"))


def mappings() -> Mappings:
    from tests.support.fakes import real_mappings

    return real_mappings()


def clone_seed(seed: Path, new_id: str) -> dict[str, Any]:
    """A seed patient's transaction Bundle with every id renamed (ids start with the patient's)."""
    assert len(new_id) <= 40, "leave room for the seed's resource suffixes (64 at most)"
    return json.loads(seed.read_text().replace(seed.stem, new_id))


def bundle_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle["entry"]]


def oracle(bundle: dict[str, Any], as_of: date = AS_OF) -> dict[str, str]:
    """study key -> status computed from the complete record straight from the file (no FHIR)."""
    evaluation = evaluate_patient(bundle_resources(bundle), mappings(), as_of)
    return {s.study: s.status for s in evaluation.studies}


def written_oracle(bundle: dict[str, Any], as_of: date = AS_OF) -> dict[str, str]:
    """study key -> status of the ResearchSubjects a first screening writes: a candidate's
    studies only (api.md "Who gets a ResearchSubject")."""
    from service.usecases.candidacy import is_candidate

    loaded = mappings()
    evaluation = evaluate_patient(bundle_resources(bundle), loaded, as_of)
    return {s.study: s.status for s in evaluation.studies
            if is_candidate(s, loaded.studies[s.study], deceased=evaluation.deceased,
                            has_subject=False)}


class Population:
    """Seed clones loaded into the FHIR server: patient id -> its Bundle."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.bundles: dict[str, dict[str, Any]] = {}

    def add(self, count: int, prefix: str | None = None) -> list[str]:
        """Load `count` clones of the seed patients (round robin) and return their ids."""
        prefix = prefix or uuid.uuid4().hex[:8]
        new: dict[str, dict[str, Any]] = {}
        for i in range(count):
            seed = SEED_FILES[i % len(SEED_FILES)]
            pid = f"{prefix}-{i:03d}-{seed.stem.removeprefix('seed-')}"
            new[pid] = clone_seed(seed, pid)
        with FhirClient(Settings().with_overrides(fhir_base_url=self.base_url)) as client:
            entries: list[dict[str, Any]] = []
            for bundle in new.values():
                entries += bundle["entry"]
                if len(entries) >= 300:
                    client.transaction({"resourceType": "Bundle", "type": "transaction",
                                        "entry": entries})
                    entries = []
            if entries:
                client.transaction({"resourceType": "Bundle", "type": "transaction",
                                    "entry": entries})
        self.bundles.update(new)
        return list(new)


