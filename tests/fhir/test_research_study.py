"""The ResearchStudy publishes its criteria: a contained Group (actual = false) in `enrollment`,
one characteristic per criterion, written with the study and kept current, idempotently."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import requests
from fhir.resources.R4B.researchstudy import ResearchStudy

from service.fhir import research_subject as rs
from service.fhir.client import FhirClient
from service.fhir.research_study import (
    CRITERION_EXTENSION,
    GROUP_REFERENCE,
    criteria_group,
    with_enrollment,
)
from service.mappings import load_mappings
from service.usecases.screening import ensure_research_studies

REPO = Path(__file__).resolve().parents[2]
DIRS = f"{REPO / 'mappings'}:{REPO / 'mappings' / 'conformance'}"


@pytest.fixture(scope="module")
def mappings():
    return load_mappings(DIRS)


def test_one_characteristic_per_criterion_with_exclusions_marked(mappings):
    study = mappings.studies["lupus-conformance"]
    group = criteria_group(study)
    assert (group["resourceType"], group["type"], group["actual"]) == ("Group", "person", False)
    rows = group["characteristic"]
    assert [r["extension"][0]["valueCode"] for r in rows] == [c.id for c in study.criteria]
    assert all(r["extension"][0]["url"] == CRITERION_EXTENSION for r in rows)
    assert [r["code"]["text"] for r in rows] == [c.text for c in study.criteria]
    assert [r["exclude"] for r in rows] == [c.type == "exclusion" for c in study.criteria]
    assert {r["code"]["coding"][0]["code"] for r in rows if r["exclude"]} >= {"hiv", "other-trial"}


def test_the_study_with_its_criteria_is_valid_r4_and_other_content_is_kept(mappings):
    study = mappings.studies["pediatric-ln-cart"]
    stored = {**rs.research_study_resource(study.key, study.title, study.registry_id),
              "description": "kept", "enrollment": [{"reference": "Group/someone-elses"}]}
    updated = with_enrollment(stored, study)
    assert updated is not None
    ResearchStudy.model_validate(updated)
    assert updated["description"] == "kept"
    assert updated["enrollment"] == [{"reference": "Group/someone-elses"},
                                     {"reference": GROUP_REFERENCE}]
    assert with_enrollment(updated, study) is None          # current: nothing to write
    changed = replace(study, criteria=study.criteria[:-1])
    again = with_enrollment(updated, changed)               # criteria changed: rewritten
    assert again is not None and len(again["contained"]) == 1
    assert len(again["contained"][0]["characteristic"]) == len(study.criteria) - 1


def _versions(client: FhirClient, ref: str) -> int:
    response = requests.get(f"{client.base_url}/{ref}/_history", timeout=10)
    response.raise_for_status()
    return len(response.json().get("entry", []))


@pytest.mark.integration
def test_created_and_found_studies_carry_their_criteria_idempotently(
    fresh_fhir_server, fhir_settings, mappings
):
    settings = replace(fhir_settings, fhir_base_url=fresh_fhir_server.base_url)
    with FhirClient(settings) as client:
        # A study someone created before (no criteria): found, then given its criteria once.
        key = "lupus-conformance"
        study = mappings.studies[key]
        answer = client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": rs.research_study_resource(key, study.title, None),
             "request": {"method": "POST", "url": "ResearchStudy"}}]})
        old_ref = answer["entry"][0]["response"]["location"].split("/_history")[0]
        old_ref = "/".join(old_ref.split("/")[-2:])
        refs = ensure_research_studies(client, mappings, REPO / "seeds")
        assert refs[key] == old_ref
        versions = {ref: _versions(client, ref) for ref in refs.values()}
        assert ensure_research_studies(client, mappings, REPO / "seeds") == refs
        assert {ref: _versions(client, ref) for ref in refs.values()} == versions
        for key, ref in refs.items():
            stored = client.read("ResearchStudy", ref.split("/")[1])
            assert {"reference": GROUP_REFERENCE} in stored["enrollment"]
            [group] = [c for c in stored["contained"] if c["resourceType"] == "Group"]
            ids = [r["extension"][0]["valueCode"] for r in group["characteristic"]]
            assert ids == [c.id for c in mappings.studies[key].criteria]
