"""A blood count sent as one panel Observation is read from a real FHIR server: the record
search finds the panel by its own code and the components decide the count criteria."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localfhir import LocalFhirError, LocalServer, NodeNotFoundError, start_local_server
from service.core.settings import Settings
from service.fhir.client import FhirClient
from service.usecases.screener import Screener
from tests.support.builders import AS_OF, birth_for, day

pytestmark = pytest.mark.integration
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    try:
        local = start_local_server()
    except NodeNotFoundError as exc:
        pytest.skip(f"local FHIR server unavailable: {exc}")
    except LocalFhirError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield local
    local.stop()


def _component(code: str, value: float, unit: str) -> dict:
    return {"code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}


def _put(resource: dict) -> dict:
    return {"resource": resource,
            "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


@pytest.mark.parametrize("panel_code", ["58410-2", "57021-8"])
def test_a_blood_count_panel_decides_the_counts(server, panel_code):
    pid = f"panel-{panel_code}"
    panel = {
        "resourceType": "Observation", "id": f"cbc-{panel_code}", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": panel_code}]},
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": day(5),
        "component": [_component("6690-2", 5.2, "10*3/uL"), _component("751-8", 3.1, "10*3/uL"),
                      _component("731-0", 0.6, "10*3/uL"), _component("718-7", 11.5, "g/dL")],
    }
    patient = {"resourceType": "Patient", "id": pid, "birthDate": birth_for(10, 30),
               "gender": "male"}
    settings = Settings().with_overrides(fhir_base_url=server.base_url)
    with FhirClient(settings) as client:
        client.transaction({"resourceType": "Bundle", "type": "transaction",
                            "entry": [_put(patient), _put(panel)]})
    body = Screener(settings).evaluate(pid, as_of=AS_OF, studies=["pediatric-ln-cart"])
    [study] = body["studies"]
    found = {c["id"]: c for c in study["criteria"]}
    for cid, expected in (("wbc", "met"), ("neutrophils", "met"), ("hemoglobin", "met"),
                          ("lymphocytes", "not-met")):
        assert found[cid]["result"] == expected, found[cid]
        assert found[cid]["evidence"] == [f"Observation/cbc-{panel_code}"]
