"""Every seed patient's expected outcome, end to end through the REST endpoint and the local
FHIR server: load the seeds, GET /patients/{id}/eligibility, compare with seeds/expected.json."""

import json

import pytest

from service.core.settings import REPO_ROOT
from service.fhir.client import FhirClient
from service.mappings import load_mappings
from service.usecases.seeding import load_seeds

pytestmark = pytest.mark.integration

EXPECTED = json.loads((REPO_ROOT / "seeds" / "expected.json").read_text(encoding="utf-8"))
AS_OF = EXPECTED["asOf"]


@pytest.fixture(scope="module")
def seeded_settings(fhir_server, tmp_path_factory):
    """Settings for the local FHIR server with the seeds loaded (once per module)."""
    from service.core.settings import Settings

    settings = Settings().with_overrides(
        fhir_base_url=fhir_server.base_url,
        queue_url=f"sqlite:///{tmp_path_factory.mktemp('q') / 'queue.sqlite'}",
    )
    with FhirClient(settings) as fhir:
        load_seeds(fhir, REPO_ROOT / "seeds", mappings=load_mappings(settings.mappings_dir))
    return settings


@pytest.fixture
def client_app(make_app, seeded_settings):
    app, _ = make_app(seeded_settings)
    return app.test_client()


@pytest.mark.parametrize("pid", sorted(EXPECTED["patients"]))
def test_seed_patient_outcome_through_rest(client_app, pid):
    response = client_app.get(f"/patients/{pid}/eligibility?asOf={AS_OF}")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["patient"] == f"Patient/{pid}"
    assert body["asOf"] == AS_OF
    expected = EXPECTED["patients"][pid]["studies"]
    # The seed studies first; any other study loaded (MAPPINGS_DIR) follows them.
    assert [s["study"] for s in body["studies"]][:2] == ["refractory-sle-cart",
                                                          "pediatric-ln-cart"]
    for study in body["studies"]:
        if study["study"] not in expected:
            continue  # a study loaded besides the seed studies: its expectations are its own
        want = expected[study["study"]]
        assert study["status"] == want["status"], (study["study"], study["criteria"])
        got = {c["id"]: c for c in study["criteria"]}
        for cid, crit in want["criteria"].items():
            assert got[cid]["result"] == crit["result"], (study["study"], cid, got[cid]["reason"])
            assert got[cid]["reason"]
            if got[cid]["result"] == "unknown":
                # An unknown always says what is missing or who must act.
                assert len(got[cid]["reason"]) > 15
        assert study["researchStudy"].startswith("ResearchStudy/")
