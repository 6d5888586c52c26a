"""Screening against the local FHIR server: round trips, write-back, idempotence, concurrency."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
from fhir.resources.R4B.researchsubject import ResearchSubject

from service.fhir import research_subject as rs
from service.fhir.client import FhirClient
from service.fhir.errors import FhirNotFound, FhirTemporaryError
from service.usecases.patient_record import read_record
from service.usecases.screening import ensure_research_studies, screen_patient

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
AS_OF = date(2026, 11, 15)


class CountingSession(requests.Session):
    """Sorts the requests a client sends into reads and writes by what they carry."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: list[str] = []
        self._lock = threading.Lock()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kind = "read"
        body = kwargs.get("data")
        if method != "GET" and body:
            bundle_type = json.loads(body).get("type")
            kind = "read" if bundle_type == "batch" else "write"
        with self._lock:
            self.kinds.append(kind)
        return super().request(method, url, *args, **kwargs)


def _load_patient(fhir: FhirClient, seed: str) -> str:
    """Put a seed patient on the server under a fresh id (the server is shared by tests)."""
    new_id = f"{seed}-{uuid.uuid4().hex[:8]}"
    text = (SEEDS / "patients" / f"{seed}.json").read_text(encoding="utf-8")
    fhir.transaction(json.loads(text.replace(seed, new_id)))
    return new_id


def _subjects(fhir: FhirClient, study: str, patient: str) -> list[dict]:
    token = f"{rs.RESEARCH_SUBJECT_SYSTEM}|{rs.research_subject_identifier_value(study, patient)}"
    return list(fhir.search("ResearchSubject", {"identifier": token}))


def _history(fhir: FhirClient, ref: str) -> list[dict]:
    response = requests.get(f"{fhir.base_url}/{ref}/_history", timeout=10)
    response.raise_for_status()
    return [e["resource"] for e in response.json().get("entry", [])]


@pytest.fixture
def fhir(fhir_settings):
    with FhirClient(fhir_settings) as c:
        yield c


@pytest.fixture
def studies(fhir, mappings):
    return ensure_research_studies(fhir, mappings, SEEDS)


def test_one_screening_costs_at_most_two_reads_and_one_write(
    fhir_settings, mappings, studies, fhir
):
    patient = _load_patient(fhir, "seed-ln-eligible")
    session = CountingSession()
    counted = FhirClient(fhir_settings, session)

    outcome = screen_patient(
        counted, mappings, patient, as_of=AS_OF, write=True, research_studies=studies
    )

    assert session.kinds.count("read") <= 2
    assert session.kinds.count("write") == 1
    assert counted.request_count == len(session.kinds)
    assert set(outcome.write_back.values()) == {"created"}
    assert set(outcome.research_subjects) == set(mappings.studies)


def test_written_research_subjects_read_back_from_the_server_alone(mappings, studies, fhir):
    patient = _load_patient(fhir, "seed-potential")
    outcome = screen_patient(
        fhir, mappings, patient, as_of=AS_OF, write=True, research_studies=studies
    )

    for study in outcome.evaluation.studies:
        (stored,) = _subjects(fhir, study.study, patient)
        assert f"ResearchSubject/{stored['id']}" == outcome.research_subjects[study.study]
        assert stored["status"] == study.status
        assert stored["study"]["reference"] == studies[study.study]
        assert stored["individual"]["reference"] == f"Patient/{patient}"
        ResearchSubject.model_validate(stored)
        read_back = []
        for ext in stored["extension"]:
            if ext["url"] != rs.CRITERION_EXTENSION:
                continue
            parts = {p["url"]: p for p in ext["extension"]}
            evidence = [
                p["valueReference"]["reference"] for p in ext["extension"] if p["url"] == "evidence"
            ]
            read_back.append(
                (
                    parts["id"]["valueCode"],
                    parts["result"]["valueCode"],
                    parts["reason"]["valueString"],
                    evidence,
                )
            )
        assert read_back == [(c.id, c.result, c.reason, list(c.evidence)) for c in study.criteria]
        # the evidence points at resources that exist on the same server
        for _, _, _, evidence in read_back:
            for ref in evidence:
                kind, rid = ref.split("/")
                assert fhir.read(kind, rid)["id"] == rid


def test_a_rescreen_with_no_change_writes_nothing_and_keeps_the_version(
    fhir_settings, mappings, studies, fhir
):
    patient = _load_patient(fhir, "seed-sle-eligible")
    first = screen_patient(
        fhir, mappings, patient, as_of=AS_OF, write=True, research_studies=studies
    )
    versions = {
        k: fhir.read(*ref.split("/"))["meta"]["versionId"]
        for k, ref in first.research_subjects.items()
    }
    session = CountingSession()
    again_client = FhirClient(fhir_settings, session)

    again = screen_patient(
        again_client, mappings, patient, as_of=AS_OF, write=True, research_studies=studies
    )

    assert session.kinds == ["read"]  # one batch, no transaction
    assert again.research_subjects == first.research_subjects
    assert set(again.write_back.values()) == {"unchanged"}
    for key, ref in again.research_subjects.items():
        assert fhir.read(*ref.split("/"))["meta"]["versionId"] == versions[key]
        assert len(_history(fhir, ref)) == 1


def test_a_rescreen_that_changes_status_updates_the_same_resource(mappings, studies, fhir):
    patient = _load_patient(fhir, "seed-ln-eligible")
    first = screen_patient(
        fhir, mappings, patient, as_of=AS_OF, write=True, research_studies=studies
    )
    key = "pediatric-ln-cart"
    before = {s.study: s.status for s in first.evaluation.studies}[key]
    assert before != "ineligible"
    # a new haemoglobin below 60 g/L, more recent than every other one
    fhir.transaction(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                        "subject": {"reference": f"Patient/{patient}"},
                        "effectiveDateTime": "2026-11-14",
                        "valueQuantity": {
                            "value": 5.1,
                            "unit": "g/dL",
                            "system": "http://unitsofmeasure.org",
                            "code": "g/dL",
                        },
                    },
                    "request": {"method": "POST", "url": "Observation"},
                }
            ],
        }
    )

    second = screen_patient(
        fhir, mappings, patient, as_of=AS_OF, write=True, research_studies=studies
    )

    assert {s.study: s.status for s in second.evaluation.studies}[key] == "ineligible"
    assert second.research_subjects[key] == first.research_subjects[key]
    assert second.write_back[key] == "updated"
    (stored,) = _subjects(fhir, key, patient)
    assert stored["status"] == "ineligible"
    assert [v["status"] for v in _history(fhir, first.research_subjects[key])] == [
        "ineligible",
        before,
    ]


def test_twenty_concurrent_screenings_leave_one_research_subject_per_study(
    fhir_settings, mappings, studies, fhir
):
    patient = _load_patient(fhir, "seed-potential")
    barrier = threading.Barrier(20)

    def screen(_: int):
        # a fhir per thread, as the service's runner builds one per screening
        with FhirClient(fhir_settings) as own:
            barrier.wait()
            return screen_patient(
                own, mappings, patient, as_of=AS_OF, write=True, research_studies=studies
            )

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(screen, range(20)))

    for key in mappings.studies:
        stored = _subjects(fhir, key, patient)
        assert len(stored) == 1, key
        assert {o.research_subjects[key] for o in outcomes} == {
            f"ResearchSubject/{stored[0]['id']}"
        }
        assert len(_history(fhir, f"ResearchSubject/{stored[0]['id']}")) == 1
    created = [o for o in outcomes if "created" in o.write_back.values()]
    assert len(created) == 1


def test_write_false_never_writes(fhir_settings, mappings, studies, fhir):
    patient = _load_patient(fhir, "seed-ln-eligible")
    session = CountingSession()

    outcome = screen_patient(
        FhirClient(fhir_settings, session), mappings, patient, as_of=AS_OF, write=False
    )

    assert "write" not in session.kinds and len(session.kinds) <= 2
    assert outcome.research_subjects == {}
    assert outcome.research_studies == studies  # found in the same read batch
    assert all(_subjects(fhir, key, patient) == [] for key in mappings.studies)
    body = outcome.to_json()
    assert body["patient"] == f"Patient/{patient}"
    assert [s["researchStudy"] for s in body["studies"]] == [studies[k] for k in mappings.studies]


class FailingBatchSession(requests.Session):
    """Lets the first batch through, then refuses the connection (a failure mid-read)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0
        self.writes = 0

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        body = kwargs.get("data")
        if method == "POST" and body:
            kind = json.loads(body).get("type")
            if kind == "transaction":
                self.writes += 1
            elif kind == "batch":
                self.batches += 1
                if self.batches > 1:
                    raise requests.ConnectionError("connection refused")
        if method == "GET" and "_offset" in url:
            raise requests.ConnectionError("connection refused")
        return super().request(method, url, *args, **kwargs)


def test_a_failure_while_reading_writes_nothing(fhir_settings, mappings, studies, fhir):
    patient = _load_patient(fhir, "seed-ln-eligible")
    session = FailingBatchSession()
    # a page size of 2 forces next pages, whose fetch fails
    failing = FhirClient(
        replace(fhir_settings, fhir_page_size=2, fhir_max_retries=1), session, sleep=lambda s: None
    )

    with pytest.raises(FhirTemporaryError):
        screen_patient(
            failing, mappings, patient, as_of=AS_OF, write=True, research_studies=studies
        )

    assert session.writes == 0
    assert all(_subjects(fhir, key, patient) == [] for key in mappings.studies)


def test_an_unknown_patient_is_not_found_and_nothing_is_written(mappings, studies, fhir):
    with pytest.raises(FhirNotFound):
        screen_patient(
            fhir,
            mappings,
            f"nobody-{uuid.uuid4().hex[:8]}",
            as_of=AS_OF,
            write=True,
            research_studies=studies,
        )


def test_a_small_page_size_still_reads_the_whole_record(fhir_settings, mappings, studies, fhir):
    patient = _load_patient(fhir, "seed-ln-eligible")
    full = read_record(fhir, mappings, patient)[0]
    with FhirClient(replace(fhir_settings, fhir_page_size=3)) as small:
        paged = read_record(small, mappings, patient)[0]
        assert small.request_count > 2  # paging really happened
    key = lambda r: (r["resourceType"], r["id"])  # noqa: E731
    assert sorted(map(key, paged)) == sorted(map(key, full))
    weights = [
        r
        for r in full
        if r["resourceType"] == "Observation"
        and r["code"]["coding"][0]["code"] in ("29463-7", "8302-2")
    ]
    assert weights, "the seed has body weight/height observations"


def test_ensure_research_studies_finds_or_creates_once(fresh_fhir_server, fhir_settings, mappings):
    settings = replace(fhir_settings, fhir_base_url=fresh_fhir_server.base_url)
    with FhirClient(settings) as fresh:
        first = ensure_research_studies(fresh, mappings, SEEDS)
        second = ensure_research_studies(fresh, mappings, SEEDS)
        assert first == second and set(first) == set(mappings.studies)
        for key, ref in first.items():
            found = list(fresh.search("ResearchStudy", {"identifier": f"{rs.STUDY_SYSTEM}|{key}"}))
            assert [f"ResearchStudy/{r['id']}" for r in found] == [ref]
            registry = [
                i["value"] for i in found[0]["identifier"] if i["system"] == rs.REGISTRY_SYSTEM
            ]
            assert registry == [mappings.studies[key].registry_id]


def test_screening_creates_missing_research_studies_itself(
    fresh_fhir_server, fhir_settings, mappings
):
    settings = replace(fhir_settings, fhir_base_url=fresh_fhir_server.base_url)
    with FhirClient(settings) as fresh:
        patient = _load_patient(fresh, "seed-sle-eligible")
        outcome = screen_patient(fresh, mappings, patient, as_of=AS_OF, write=True)
        assert set(outcome.research_studies) == set(mappings.studies)
        again = screen_patient(fresh, mappings, patient, as_of=AS_OF, write=True)
        assert again.research_studies == outcome.research_studies
        assert len(list(fresh.search("ResearchStudy", {}))) == len(mappings.studies)


def test_a_workflow_status_survives_a_rescreen_that_changes_the_computed_status(
    mappings, studies, fhir
):
    patient = _load_patient(fhir, "seed-ln-eligible")
    key = "pediatric-ln-cart"
    first = screen_patient(
        fhir, mappings, patient, as_of=AS_OF, write=True, research_studies=studies
    )
    (stored,) = _subjects(fhir, key, patient)
    ref = first.research_subjects[key]
    # a coordinator moves the candidate on study (any fhir writing the R4 status)
    fhir.transaction(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": {**stored, "status": "on-study"},
                       "request": {"method": "PUT", "url": ref}}],
        }
    )
    # a new haemoglobin below 60 g/L makes the computed status ineligible
    fhir.transaction(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{
                "resource": {
                    "resourceType": "Observation", "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                    "subject": {"reference": f"Patient/{patient}"},
                    "effectiveDateTime": "2026-11-14",
                    "valueQuantity": {"value": 5.1, "unit": "g/dL",
                                      "system": "http://unitsofmeasure.org", "code": "g/dL"},
                },
                "request": {"method": "POST", "url": "Observation"},
            }],
        }
    )

    second = screen_patient(
        fhir, mappings, patient, as_of=AS_OF, write=True, research_studies=studies
    )

    assert second.write_back[key] == "updated"
    (after,) = _subjects(fhir, key, patient)
    assert after["status"] == "on-study"
    assert rs.computed_status(after) == "ineligible"
    # and an unchanged re-screen writes nothing, status still the person's
    third = screen_patient(
        fhir, mappings, patient, as_of=AS_OF, write=True, research_studies=studies
    )
    assert third.write_back[key] == "unchanged"
    (last,) = _subjects(fhir, key, patient)
    assert last["status"] == "on-study" and last["meta"]["versionId"] == after["meta"]["versionId"]
