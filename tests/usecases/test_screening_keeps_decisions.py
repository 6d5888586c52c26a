"""A person's decision made while a screening runs is never overwritten: on the local FHIR
server, a workflow status set between the screening's read and its write makes the write a
conflict (If-Match, 412), and the screening reads again and writes on top of the decision."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from localfhir import LocalServer, start_local_server
from service.core.settings import REPO_ROOT, Settings
from service.fhir import research_subject as rs
from service.fhir.client import FhirClient
from service.mappings import load_mappings
from service.usecases.screening import screen_patient
from tests.support.builders import AS_OF, HB, LN, PID, day, eligible_ln_patient, obs

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    local = start_local_server()
    yield local
    local.stop()


class PersonActsMidScreening:
    """The FHIR client of a screening; just before its first write, a coordinator sets the
    workflow status of the stored ResearchSubject (as the pages would, through the server)."""

    def __init__(self, client: FhirClient) -> None:
        self._client = client
        self.transactions = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transaction(self, bundle: Any) -> dict[str, Any]:
        self.transactions += 1
        if self.transactions == 1:
            stored = subject(self._client)
            stored["status"] = "on-study"  # a person's workflow status
            self._client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": stored,
                 "request": {"method": "PUT", "url": f"ResearchSubject/{stored['id']}"}}]})
        return self._client.transaction(bundle)


def subject(client: FhirClient) -> dict[str, Any]:
    token = f"{rs.RESEARCH_SUBJECT_SYSTEM}|{rs.research_subject_identifier_value(LN, PID)}"
    (found,) = client.search("ResearchSubject", {"identifier": token})
    return found


def put(client: FhirClient, *resources: dict[str, Any]) -> None:
    client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources]})


def test_a_decision_made_during_a_screening_survives_its_write(server):
    mappings = load_mappings(REPO_ROOT / "mappings")
    with FhirClient(Settings().with_overrides(fhir_base_url=server.base_url)) as client:
        put(client, *eligible_ln_patient())
        screen_patient(client, mappings, PID, as_of=AS_OF, write=True, studies=[LN])
        assert subject(client)["status"] == "eligible"

        # A new haemoglobin below the limit: the re-screen has a new result to write.
        put(client, obs(HB, 50, "g/L", day(0)))
        racing = PersonActsMidScreening(client)
        outcome = screen_patient(racing, mappings, PID, as_of=AS_OF, write=True, studies=[LN])

        stored = subject(client)
    assert racing.transactions == 2  # the stale write was refused, then written on top
    assert stored["status"] == "on-study"  # the person's decision stands
    assert rs.computed_status(stored) == outcome.evaluation.studies[0].status
    assert outcome.evaluation.studies[0].status == "ineligible"
    hemoglobin = next(e for e in stored["extension"] if e["url"] == rs.CRITERION_EXTENSION
                      and any(x.get("valueCode") == "hemoglobin" or x.get("valueString") ==
                              "hemoglobin" for x in e["extension"]))
    assert any(x.get("valueCode") == "not-met" for x in hemoglobin["extension"])
