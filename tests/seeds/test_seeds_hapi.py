"""The seeds on real HAPI: they load, and every seed patient's expected result (seeds/expected.json)
comes through GET /patients/{id}/eligibility with HAPI as the FHIR server."""

from __future__ import annotations

import json

import pytest

from service.core.settings import REPO_ROOT, Settings
from service.fhir.client import FhirClient
from service.mappings import load_mappings
from service.usecases.seeding import load_seeds
from service.web.app import create_app

pytestmark = pytest.mark.hapi

EXPECTED = json.loads((REPO_ROOT / "seeds" / "expected.json").read_text(encoding="utf-8"))
AS_OF = EXPECTED["asOf"]


@pytest.fixture(scope="module")
def hapi_app(hapi_base_url, tmp_path_factory):
    settings = Settings().with_overrides(
        fhir_base_url=hapi_base_url,
        queue_url=f"sqlite:///{tmp_path_factory.mktemp('q') / 'queue.sqlite'}",
    )
    mappings = load_mappings(settings.mappings_dir)
    with FhirClient(settings) as fhir:
        report = load_seeds(fhir, REPO_ROOT / "seeds", mappings=mappings)
        again = load_seeds(fhir, REPO_ROOT / "seeds", mappings=mappings)
    app = create_app(settings)
    yield app, report, again
    app.extensions["eligibility"].queue.stop()


def test_seeds_load_on_hapi_and_a_reload_changes_nothing(hapi_app):
    _, report, again = hapi_app
    assert sorted(report.patients) == sorted(EXPECTED["patients"])
    assert set(report.studies) == {"refractory-sle-cart", "pediatric-ln-cart"}
    assert all(ref.startswith("ResearchStudy/") for ref in report.studies.values())
    # Idempotent on HAPI too: the same studies are found again, not created twice.
    assert again.studies == report.studies
    assert again.created == 0


@pytest.mark.parametrize("pid", sorted(EXPECTED["patients"]))
def test_seed_patient_outcome_through_rest_on_hapi(hapi_app, pid):
    app, _, _ = hapi_app
    response = app.test_client().get(f"/patients/{pid}/eligibility?asOf={AS_OF}")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["patient"] == f"Patient/{pid}"
    expected = EXPECTED["patients"][pid]["studies"]
    assert [s["study"] for s in body["studies"]] == ["refractory-sle-cart", "pediatric-ln-cart"]
    for study in body["studies"]:
        want = expected[study["study"]]
        assert study["status"] == want["status"], (study["study"], study["criteria"])
        got = {c["id"]: c for c in study["criteria"]}
        for cid, crit in want["criteria"].items():
            assert got[cid]["result"] == crit["result"], (study["study"], cid, got[cid]["reason"])
