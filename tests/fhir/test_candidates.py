"""Population screening: candidates by diagnosis (plus our ResearchSubjects), not the census."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from service.fhir import candidates
from service.fhir import research_subject as rs
from service.fhir.client import FhirClient
from service.fhir.errors import FhirProtocolError
from tests.support.candidate_population import ICD10, ICD10CM, SNOMED, load_candidate_population

REPO = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 11, 15)


def test_the_search_names_every_form_of_the_diagnosis_codes(mappings):
    tokens = candidates.diagnosis_tokens(mappings)
    assert candidates.diagnosis_concepts(mappings) == ["sle"]
    for code in ("M32.9", "M329", "M32.8", "M32.1", "M32.14", "M3219"):
        assert f"{ICD10CM}|{code}" in tokens and f"{ICD10}|{code}" in tokens
    assert f"{SNOMED}|55464009" in tokens
    # Each token stands for a code the engine also counts as SLE: the search finds no one the
    # engine would not, and misses no one it would.
    for token in tokens:
        system, _, code = token.partition("|")
        assert "sle" in mappings.concepts_for(system, code), token
    assert len(tokens) == len(set(tokens))


@pytest.mark.parametrize(("reference", "expected"), [
    ({"reference": "Patient/p-1"}, "p-1"),
    ({"reference": "http://fhir.example/base/Patient/p.2/_history/3"}, "p.2"),
    ({"reference": "Group/g"}, None),
    ({"display": "no reference"}, None),
    ("Patient/p", None),
])
def test_patient_ids_from_references(reference, expected):
    assert candidates.patient_id_of(reference) == expected


@pytest.fixture
def population(fresh_fhir_server, fhir_settings):
    """Ten patients: three diagnosed (three code forms), one already ours, six others."""
    settings = fhir_settings.with_overrides(fhir_base_url=fresh_fhir_server.base_url,
                                            fhir_page_size=2)  # several pages per search
    load_candidate_population(settings)
    return settings


@pytest.mark.integration
def test_candidates_are_the_diagnosed_and_those_we_screened_before(population, mappings):
    with FhirClient(population) as client:
        found = candidates.candidate_ids(client, mappings, page_size=2)
        assert found == ["p0", "p1", "p2", "p4"]
        assert sorted(candidates.every_patient_id(client, page_size=3)) == [
            f"p{i}" for i in range(10)]


def _subjects_by_patient(client: FhirClient) -> dict[str, int]:
    out: dict[str, int] = {}
    for subject in client.search_population(
            "ResearchSubject", {"identifier": f"{rs.RESEARCH_SUBJECT_SYSTEM}|"}):
        patient = candidates.patient_id_of(subject["individual"])
        out[patient] = out.get(patient, 0) + 1
    return out


@pytest.mark.integration
def test_screen_all_writes_for_candidates_only_and_every_patient_for_all(
        population, monkeypatch, capsys):
    from service.cli import main as cli

    monkeypatch.setenv("FHIR_BASE_URL", population.fhir_base_url)
    monkeypatch.setenv("FHIR_PAGE_SIZE", "2")
    assert cli.main(["screen", "--all", "--csv", "--as-of", AS_OF.isoformat()]) == 0
    captured = capsys.readouterr()
    assert "4 candidate(s)" in captured.err
    assert sorted({line.split(",")[0] for line in captured.out.splitlines()[1:]}) == [
        "p0", "p1", "p2", "p4"]
    with FhirClient(population) as client:
        # p4 holds one of ours (pediatric-ln-cart) and no diagnosis: that one is updated, and
        # no other is written for it (api.md "Who gets a ResearchSubject"). p1's diagnosis
        # names the patient by an absolute URL: the candidate search finds it, but this
        # server's per-patient search (`patient=p1`) does not return it, so the screening
        # sees no diagnosis and writes nothing (HAPI stores its own base's URLs as relative).
        assert _subjects_by_patient(client) == {"p0": 2, "p2": 2, "p4": 1}

    assert cli.main(["screen", "--every-patient", "--csv", "--as-of", AS_OF.isoformat()]) == 0
    with FhirClient(population) as client:
        assert _subjects_by_patient(client) == {f"p{i}": 2 for i in range(10)}


class _Pages:
    """A client whose population search answers the given Bundles in turn."""

    def __init__(self, *bundles: dict) -> None:
        self.bundles = list(bundles)

    def _request(self, *args, **kwargs):
        return self.bundles.pop(0)


def _page(ids, *, total=None, next_url=None):
    bundle = {"resourceType": "Bundle", "type": "searchset",
              "entry": [{"resource": {"resourceType": "Patient", "id": i}} for i in ids]}
    if total is not None:
        bundle["total"] = total
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def test_a_population_search_never_ends_silently_short(fhir_settings):
    client = FhirClient(fhir_settings)
    base = client.base_url
    client._request = _Pages(_page(["a"], total=3))._request
    with pytest.raises(FhirProtocolError, match="reported 3 matches but returned 1"):
        list(client.search_population("Patient"))
    looping = _Pages(_page(["a"], next_url=f"{base}/Patient?page=2"),
                     _page(["b"], next_url=f"{base}/Patient?page=2"))
    client._request = looping._request
    with pytest.raises(FhirProtocolError, match="repeated a next link"):
        list(client.search_population("Patient"))
