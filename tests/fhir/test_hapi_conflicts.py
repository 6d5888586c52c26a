"""HAPI's answers to races and cached searches, with HAPI-shaped fixtures: a write that loses a
race (409, HAPI-0550) is retried once after a re-read; every FHIR read says Cache-Control:
no-cache, so HAPI never answers it from a search it ran up to 60 s earlier."""

from __future__ import annotations

import json

import pytest
import responses

from service.fhir import research_subject as rs
from service.fhir.errors import FhirConflict
from service.usecases.screening import ensure_research_studies, screen_patient
from tests.support.fhir_testkit import BASE, hapi
from tests.usecases.test_screening import (  # noqa: F401
    AS_OF,
    REPO,
    STUDY_REFS,
    WHEN,
    Server,
    candidate,
    engine,
)

FHIR_JSON = "application/fhir+json"
# The stub engine of test_screening (imported above): the screenings below evaluate nothing real.
pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def client(make_client, settings):
    fhir, _ = make_client(settings)
    return fhir


def _conflict():
    return 409, {"Content-Type": FHIR_JSON}, json.dumps(hapi("outcome-409-hapi-0550.json"))


class RacingServer(Server):
    """Answers the first `losses` write transactions with HAPI's 409; meanwhile the winner's
    ResearchSubjects appear in the store (as another worker would have written them)."""

    def __init__(self, losses: int, winner: list[dict] | None = None):
        super().__init__()
        self.losses = losses
        self.winner = winner or []

    def __call__(self, request):
        bundle = json.loads(request.body)
        if bundle["type"] == "transaction" and self.losses:
            self.losses -= 1
            self.transactions.append(bundle)
            self.stored = list(self.winner)
            return _conflict()
        return super().__call__(request)


def _winners(mappings) -> list[dict]:
    # What the stub engine computes, stored by the writer that won the race.
    from service.engine.results import StudyResult

    out = []
    for key in mappings.studies:
        study = StudyResult(study=key, title=mappings.studies[key].title, criteria=candidate())
        resource = rs.build_research_subject(study, patient_id="pt-1", as_of=AS_OF,
                                             research_study=STUDY_REFS[key], evaluated_at=WHEN)
        out.append({**resource, "id": f"won-{key}", "meta": {"versionId": "1"}})
    return out


@responses.activate
def test_a_lost_race_is_read_again_and_what_the_winner_wrote_is_kept(client, mappings):
    server = RacingServer(losses=1, winner=_winners(mappings))
    responses.add_callback(responses.POST, BASE, callback=server)

    outcome = screen_patient(client, mappings, "pt-1", as_of=AS_OF, write=True,
                             research_studies=STUDY_REFS, evaluated_at=WHEN)

    assert len(server.batches) == 2  # read, 409, read again
    assert len(server.transactions) == 1  # the winner's result is ours: nothing more to write
    assert outcome.write_back == {k: "unchanged" for k in mappings.studies}
    assert outcome.research_subjects == {k: f"ResearchSubject/won-{k}" for k in mappings.studies}


@responses.activate
def test_a_lost_race_with_a_different_result_is_written_once_more(client, mappings):
    server = RacingServer(losses=1)  # the winner left nothing we can see: write again
    responses.add_callback(responses.POST, BASE, callback=server)

    outcome = screen_patient(client, mappings, "pt-1", as_of=AS_OF, write=True,
                             research_studies=STUDY_REFS)

    assert len(server.batches) == 2 and len(server.transactions) == 2
    assert set(outcome.write_back.values()) == {"created"}


@responses.activate
def test_losing_twice_gives_up_with_the_conflict(client, mappings):
    server = RacingServer(losses=2)
    responses.add_callback(responses.POST, BASE, callback=server)

    with pytest.raises(FhirConflict) as caught:
        screen_patient(client, mappings, "pt-1", as_of=AS_OF, write=True,
                       research_studies=STUDY_REFS)

    assert caught.value.status == 409
    assert len(server.batches) == 2 and len(server.transactions) == 2


@responses.activate
def test_a_412_several_matches_is_not_retried(client, mappings):
    server = Server(transaction_status=412)
    responses.add_callback(responses.POST, BASE, callback=server)
    with pytest.raises(FhirConflict):
        screen_patient(client, mappings, "pt-1", as_of=AS_OF, write=True,
                       research_studies=STUDY_REFS)
    assert len(server.batches) == 1 and len(server.transactions) == 1


@responses.activate
def test_a_research_study_create_that_lost_its_race_finds_the_winners_study(client, mappings):
    keys = list(mappings.studies)
    searches = []

    def search(request):
        searches.append(request.url)
        if len(searches) == 1:
            return 200, {"Content-Type": FHIR_JSON}, json.dumps(hapi("searchset-empty.json"))
        entries = [{"resource": {"resourceType": "ResearchStudy", "id": f"won-{k}", "status":
                                 "active", "identifier": [{"system": rs.STUDY_SYSTEM, "value": k}]},
                    "search": {"mode": "match"}} for k in keys]
        return 200, {"Content-Type": FHIR_JSON}, json.dumps(
            {"resourceType": "Bundle", "type": "searchset", "total": 2, "entry": entries})

    responses.add_callback(responses.GET, f"{BASE}/ResearchStudy", callback=search)
    responses.add_callback(responses.POST, BASE, callback=lambda request: _conflict())

    refs = ensure_research_studies(client, mappings)

    assert refs == {k: f"ResearchStudy/won-{k}" for k in keys}
    assert len(searches) == 2
    assert [c.request.method for c in responses.calls] == ["GET", "POST", "GET"]


@responses.activate
def test_every_read_and_write_says_no_cache(client):
    page1 = hapi("searchset-observation-page1.json")
    responses.get(f"{BASE}/Observation", json=page1)
    responses.add(responses.GET, f"{BASE}", json=hapi("searchset-observation-page2.json"))
    responses.post(BASE, json={"resourceType": "Bundle", "type": "batch-response", "entry": []})

    list(client.search("Observation", {"subject": "Patient/pt-1"}))
    client.batch({"resourceType": "Bundle", "type": "batch", "entry": []})

    assert len(responses.calls) >= 3  # first page, _getpages page, the batch
    assert {c.request.headers.get("Cache-Control") for c in responses.calls} == {"no-cache"}
