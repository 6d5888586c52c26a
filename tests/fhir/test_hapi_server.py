"""The FHIR side of the service against real HAPI (hapi/): write-back under 50 concurrent
screenings of one patient, a heavy record paged with `_getpages`, and the coordinator
workspace's confirmations (Observation, Consent, Provenance) accepted as docs/write-back.md
shapes them."""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from service.core.settings import Settings
from service.fhir import research_subject as rs
from service.fhir.client import FhirClient
from service.fhir.errors import FhirConflict
from service.fhir.queries import record_queries
from service.usecases.screening import PatientLocks, ensure_research_studies, screen_patient
from tests.benchmarks import synthetic
from tests.benchmarks.fhir_server import load_population

pytestmark = pytest.mark.hapi

AS_OF = synthetic.AS_OF
SCREENINGS = 50


class RecordingSession(requests.Session):
    """Keeps (method, url, status, body) of every request, thread-safely."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, int, dict[str, Any] | None]] = []
        self._lock = threading.Lock()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = super().request(method, url, *args, **kwargs)
        data = kwargs.get("data")
        body = json.loads(data) if isinstance(data, bytes | str) and data else None
        with self._lock:
            self.seen.append((method, url, response.status_code, body))
        return response


@pytest.fixture(scope="module")
def settings(hapi_base_url):
    return Settings().with_overrides(fhir_base_url=hapi_base_url, queue_url="memory://")


@pytest.fixture(scope="module")
def study_refs(settings, mappings):
    with FhirClient(settings) as client:
        return ensure_research_studies(client, mappings, synthetic.SEEDS_DIR)


def _load(settings: Settings, record: list[dict[str, Any]]) -> str:
    """Create one record (server-assigned ids) and return its Patient id."""
    # One transaction of up to ~1,300 resources: HAPI takes a while, more on busy cores.
    with FhirClient(settings.with_overrides(fhir_timeout=300)) as client:
        _, ids = load_population(client, [record])
    return ids[0]


def _study(evaluation: Any, key: str) -> Any:
    return next(s for s in evaluation.studies if s.study == key)


def _subjects(client: FhirClient, pid: str, key: str) -> list[dict[str, Any]]:
    value = rs.research_subject_identifier_value(key, pid)
    return list(client.search(
        "ResearchSubject", {"identifier": f"{rs.RESEARCH_SUBJECT_SYSTEM}|{value}"}))


def test_fifty_concurrent_screenings_of_one_patient_leave_one_research_subject_per_study(
        settings, mappings, study_refs):
    seeds = synthetic.seed_records()
    pid = _load(settings, synthetic.lupus_patient(f"race-{uuid.uuid4().hex[:8]}", 0, seeds))
    session = RecordingSession()
    start = threading.Barrier(SCREENINGS)

    def screen(_: int) -> Any:
        # Each with its own client and its own locks: 50 workers on 50 machines, no queue.
        client = FhirClient(settings, session=session)
        start.wait()
        try:
            return screen_patient(client, mappings, pid, as_of=AS_OF, write=True,
                                  research_studies=study_refs, locks=PatientLocks())
        except FhirConflict as exc:
            return exc

    with ThreadPoolExecutor(SCREENINGS) as pool:
        results = list(pool.map(screen, range(SCREENINGS)))

    conflicts = [r for r in results if isinstance(r, FhirConflict)]
    outcomes = [r for r in results if not isinstance(r, FhirConflict)]
    statuses = Counter(status for method, _, status, body in session.seen
                       if method == "POST" and body and body.get("type") == "transaction")
    # Losing twice in a row is possible under such a storm; it fails cleanly (the job queue
    # retries it) and is always HAPI's 409, never a wrong result.
    assert all(c.status == 409 for c in conflicts), conflicts
    assert len(outcomes) >= SCREENINGS * 0.8, (len(conflicts), statuses)
    with FhirClient(settings) as client:
        for key in mappings.studies:
            stored = _subjects(client, pid, key)
            assert len(stored) == 1, f"{key}: {len(stored)} ResearchSubjects ({statuses})"
            ref = f"ResearchSubject/{stored[0]['id']}"
            # Every screening that finished names that one resource.
            assert {o.research_subjects[key] for o in outcomes} == {ref}
            assert stored[0]["status"] == _study(outcomes[0].evaluation, key).status


def test_a_heavy_record_pages_with_getpages_within_the_read_budget(settings, mappings,
                                                                    study_refs):
    record = synthetic.heavy_record(f"heavy-{uuid.uuid4().hex[:8]}", years=3, medications=20)
    pid = _load(settings, record)
    session = RecordingSession()
    with FhirClient(settings, session=session) as client:
        outcome = screen_patient(client, mappings, pid, as_of=AS_OF, write=True,
                                 research_studies=study_refs)

    observations = sum(1 for r in record if r["resourceType"] == "Observation")
    writes = [body for method, _, _, body in session.seen
              if method == "POST" and body and body.get("type") == "transaction"]
    reads = [(method, url, body) for method, url, _, body in session.seen
             if method == "GET" or (body and body.get("type") == "batch")]
    # Reads per screening as the benchmark counts them: the read batch, then one request per
    # round of next pages (a batch of them, or a GET when one search alone has more). The
    # Observations are the longest search: one read per page of it.
    assert observations > 2 * settings.fhir_page_size
    assert len(reads) == math.ceil(observations / settings.fhir_page_size)
    assert len(writes) == 1
    next_pages = [url if method == "GET" else e["request"]["url"]
                  for method, url, body in reads[1:]
                  for e in ((body or {}).get("entry") or [{}])]
    assert next_pages and all("_getpages=" in url for url in next_pages), next_pages
    # Nothing lost or doubled on the way through HAPI's pages: every Observation once.
    with FhirClient(settings) as client:
        read = client.run_queries(record_queries(pid, mappings.observation_codes(),
                                                 page_size=settings.fhir_page_size))
    ids = Counter(r["id"] for r in read["Observation"])
    assert len(ids) == observations and set(ids.values()) == {1}
    assert {s.study for s in outcome.evaluation.studies} == set(mappings.studies)


def _confirmation(pid: str, criterion: str, study_ref: str, user: dict[str, Any]
                  ) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "urn:trial-eligibility:criterion", "code": criterion}]},
        "subject": {"reference": f"Patient/{pid}"},
        "focus": [{"reference": study_ref}],
        "effectiveDateTime": f"{AS_OF.isoformat()}T09:00:00+00:00",
        "valueBoolean": True,
        "performer": [user],
    }


def _provenance(target: str, user: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Provenance", "target": [{"reference": target}],
        "recorded": f"{AS_OF.isoformat()}T09:00:05+00:00",
        "agent": [{"who": user}],
    }


def test_workspace_confirmations_are_accepted_by_hapi_and_decide_the_criteria(
        settings, mappings, study_refs):
    seeds = synthetic.seed_records()
    pid = _load(settings, synthetic.lupus_patient(f"ws-{uuid.uuid4().hex[:8]}", 0, seeds))
    key = "refractory-sle-cart"
    user = {"display": "Dr. Ada Coordinator",
            "identifier": {"system": "urn:trial-eligibility:user", "value": "ada"}}
    obs_url, consent_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    consent = {
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "dateTime": f"{AS_OF.isoformat()}T09:00:00+00:00",
        "policy": [{"uri": f"urn:trial-eligibility:study:{key}"}],
        "provision": {"type": "permit"},
        "performer": [user],
    }
    entries = [
        {"fullUrl": obs_url, "resource": _confirmation(pid, "ecg", study_refs[key], user),
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": _provenance(obs_url, user), "request": {"method": "POST",
                                                             "url": "Provenance"}},
        {"fullUrl": consent_url, "resource": consent,
         "request": {"method": "POST", "url": "Consent"}},
        {"resource": _provenance(consent_url, user), "request": {"method": "POST",
                                                                 "url": "Provenance"}},
    ]
    with FhirClient(settings) as client:
        answer = client.transaction({"resourceType": "Bundle", "type": "transaction",
                                     "entry": entries})
        statuses = [e["response"]["status"] for e in answer["entry"]]
        assert all(s.startswith("201") for s in statuses), statuses
        obs_ref = answer["entry"][0]["response"]["location"].split("/_history")[0]
        provenance = client.read("Provenance", answer["entry"][1]["response"]["location"]
                                 .split("/")[1])
        assert provenance["target"][0]["reference"] == obs_ref
        assert provenance["agent"][0]["who"]["identifier"]["value"] == "ada"

        outcome = screen_patient(client, mappings, pid, as_of=AS_OF, write=False,
                                 research_studies=study_refs)
        criteria = {c.id: c for c in _study(outcome.evaluation, key).criteria}
        assert criteria["ecg"].result == "met" and obs_ref in criteria["ecg"].evidence
        assert criteria["consent"].result == "met"

        # Undoing a confirmation marks it entered-in-error (nothing is deleted); HAPI takes it.
        stored = client.read("Observation", obs_ref.split("/")[1])
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {**stored, "status": "entered-in-error"},
             "request": {"method": "PUT", "url": obs_ref}}]})
        again = screen_patient(client, mappings, pid, as_of=AS_OF, write=False,
                               research_studies=study_refs)
        assert {c.id: c.result for c in _study(again.evaluation, key).criteria}["ecg"] != "met"
