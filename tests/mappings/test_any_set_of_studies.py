"""Adding a study changes nothing for the others: every seed patient gets the same results for
the seed studies whether or not the conformance study is loaded beside them."""

from __future__ import annotations

import json

import pytest

from service.core.settings import REPO_ROOT
from service.engine.evaluate import evaluate_patient
from service.mappings import load_mappings
from tests.support.seed_population import AS_OF, SEED_FILES, bundle_resources

SEEDS = load_mappings(REPO_ROOT / "mappings")
MORE = load_mappings(f"{REPO_ROOT / 'mappings'}:{REPO_ROOT / 'mappings' / 'conformance'}")


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.stem)
def test_seed_results_do_not_depend_on_other_studies(path):
    resources = bundle_resources(json.loads(path.read_text(encoding="utf-8")))
    alone = evaluate_patient(resources, SEEDS, AS_OF, strict=True).to_json()
    together = evaluate_patient(resources, MORE, AS_OF, strict=True).to_json()
    assert [s["study"] for s in together["studies"]] == [*SEEDS.studies, "lupus-conformance"]
    assert together["studies"][:len(SEEDS.studies)] == alone["studies"]
