"""The local FHIR server behaves like a FHIR R4 server where the service depends on it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from localfhir import LocalServer, NodeNotFoundError, start_local_server
from tests.support.ci import unavailable

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
LOINC = "http://loinc.org"


class FhirSession(requests.Session):
    """A requests session that speaks FHIR JSON to one base URL."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url
        self.headers.update(FHIR_JSON)


@pytest.fixture
def fhir(fhir_server: LocalServer) -> Iterator[FhirSession]:
    with FhirSession(fhir_server.base_url) as session:
        yield session


def url(session: FhirSession, path: str) -> str:
    return f"{session.base_url}/{path}" if path else session.base_url


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def observation(patient_ref: str, code: str, when: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "g/dL"},
    }


def post_entry(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def transaction(fhir: FhirSession, entries: list[dict[str, Any]]) -> requests.Response:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return fhir.post(url(fhir, ""), json=bundle)


def search_all(fhir: FhirSession, first_url: str) -> tuple[list[dict[str, Any]], int]:
    """Follow `next` links; return the matched resources and how many pages were read."""
    resources: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = first_url
    while next_url:
        response = fhir.get(next_url)
        assert response.status_code == 200, response.text
        bundle = response.json()
        pages += 1
        assert pages <= 50, "paging does not end"
        resources += [
            e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"
        ]
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        next_url = links.get("next")
    return resources, pages


def assert_outcome(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error"
    return body


def test_metadata_is_an_r4_capability_statement(fhir: FhirSession) -> None:
    response = fhir.get(url(fhir, "metadata"))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert {"Patient", "Observation", "ResearchSubject", "ResearchStudy"} <= types


def test_create_then_read_with_location_and_etag(fhir: FhirSession) -> None:
    family = unique("Family")
    created = fhir.post(
        url(fhir, "Patient"),
        json={"resourceType": "Patient", "id": "client-id", "name": [{"family": family}]},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"] != "client-id"  # the server assigns ids on create, as HAPI does
    assert created.headers["ETag"] == 'W/"1"'
    assert created.headers["Location"] == url(fhir, f"Patient/{body['id']}/_history/1")

    read = fhir.get(url(fhir, f"Patient/{body['id']}"))
    assert read.status_code == 200
    assert read.json()["name"] == [{"family": family}]
    assert read.json()["meta"]["versionId"] == "1"


def test_update_makes_a_new_version_only_when_content_changes(fhir: FhirSession) -> None:
    pid = unique("pat")
    patient = {"resourceType": "Patient", "id": pid, "gender": "female"}
    first = fhir.put(url(fhir, f"Patient/{pid}"), json=patient)
    assert first.status_code == 201  # update-as-create
    same = fhir.put(url(fhir, f"Patient/{pid}"), json=patient)
    assert same.status_code == 200
    assert same.json()["meta"]["versionId"] == "1"
    changed = fhir.put(url(fhir, f"Patient/{pid}"), json={**patient, "gender": "male"})
    assert changed.status_code == 200
    assert changed.json()["meta"]["versionId"] == "2"
    assert changed.headers["Location"].endswith(f"/Patient/{pid}/_history/2")
    history = fhir.get(url(fhir, f"Patient/{pid}/_history")).json()
    assert [e["resource"]["gender"] for e in history["entry"]] == ["male", "female"]


def test_patient_code_sorted_search_pages_through_next_links(fhir: FhirSession) -> None:
    pid = unique("pat")
    other = unique("pat")
    entries = [
        {
            "resource": {"resourceType": "Patient", "id": p},
            "request": {"method": "PUT", "url": f"Patient/{p}"},
        }
        for p in (pid, other)
    ]
    # 23 haemoglobin values on distinct days, plus noise: another code, another patient.
    wanted_dates = {f"2025-{1 + i % 12:02d}-{1 + i:02d}" for i in range(23)}
    for i, day in enumerate(sorted(wanted_dates)):
        entries.append(post_entry(observation(f"Patient/{pid}", "718-7", day, 10 + i)))
        entries.append(post_entry(observation(f"Patient/{pid}", "2160-0", day, 1)))
        entries.append(post_entry(observation(f"Patient/{other}", "718-7", day, 1)))
    assert transaction(fhir, entries).status_code == 200

    first = url(fhir, f"Observation?patient={pid}&code={LOINC}|718-7&_sort=-date&_count=10")
    found, pages = search_all(fhir, first)
    assert pages == 3
    assert len(found) == len({r["id"] for r in found}) == 23
    assert {r["subject"]["reference"] for r in found} == {f"Patient/{pid}"}
    assert {r["code"]["coding"][0]["code"] for r in found} == {"718-7"}
    dates = [r["effectiveDateTime"] for r in found]
    assert dates == sorted(wanted_dates, reverse=True)

    # A bare id on the multi-target `subject` finds the same as `patient` (HAPI does this too).
    by_subject, _ = search_all(
        fhir, url(fhir, f"Observation?subject={pid}&code={LOINC}|718-7&_count=100")
    )
    assert {r["id"] for r in by_subject} == {r["id"] for r in found}


def test_transaction_resolves_placeholders_and_is_all_or_nothing(fhir: FhirSession) -> None:
    marker = unique("mrn")
    placeholder = f"urn:uuid:{uuid.uuid4()}"
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": marker}]}
    ok = transaction(
        fhir,
        [
            post_entry(patient, placeholder),
            post_entry(observation(placeholder, "718-7", "2025-01-01", 12)),
        ],
    )
    assert ok.status_code == 200, ok.text
    response = ok.json()
    assert response["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    patient_location = response["entry"][0]["response"]["location"]
    assert re.fullmatch(r"Patient/[^/]+/_history/1", patient_location)
    obs = fhir.get(url(fhir, response["entry"][1]["response"]["location"])).json()
    assert obs["subject"]["reference"] == patient_location.rsplit("/_history", 1)[0]

    failed_marker = unique("mrn")
    invalid = {"resourceType": "Observation", "code": {"text": "no status"}}
    failed = transaction(
        fhir,
        [
            post_entry({**patient, "identifier": [{"system": "urn:test", "value": failed_marker}]}),
            post_entry(invalid),
        ],
    )
    assert_outcome(failed, 400)
    left = fhir.get(url(fhir, f"Patient?identifier=urn:test|{failed_marker}")).json()
    assert left["total"] == 0


def test_conditional_update_by_identifier(fhir: FhirSession) -> None:
    key = unique("rs")
    target = url(fhir, f"ResearchSubject?identifier=urn:test:rs|{key}")
    subject = {
        "resourceType": "ResearchSubject",
        "identifier": [{"system": "urn:test:rs", "value": key}],
        "status": "candidate",
        "study": {"reference": "ResearchStudy/study-1"},
        "individual": {"reference": "Patient/patient-1"},
    }
    created = fhir.put(target, json=subject)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]

    updated = fhir.put(target, json={**subject, "status": "eligible"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == rid
    assert updated.json()["meta"]["versionId"] == "2"
    assert fhir.get(url(fhir, f"ResearchSubject/{rid}")).json()["status"] == "eligible"

    assert fhir.post(url(fhir, "ResearchSubject"), json=subject).status_code == 201
    assert_outcome(fhir.put(target, json=subject), 412)


def test_invalid_requests_get_operation_outcomes(fhir: FhirSession) -> None:
    assert_outcome(fhir.post(url(fhir, "Patient"), data=b'{"resourceType": "Patient",'), 400)
    missing_status = fhir.post(
        url(fhir, "Observation"), json={"resourceType": "Observation", "code": {"text": "x"}}
    )
    issue = assert_outcome(missing_status, 400)["issue"][0]
    assert issue["expression"] == ["Observation.status"]
    # Parameters the in-memory matcher cannot evaluate are refused instead of matching nothing.
    assert_outcome(fhir.get(url(fhir, "Observation?no-such-param=1")), 400)
    assert_outcome(fhir.get(url(fhir, "Observation?value-quantity=gt5")), 400)


def test_missing_and_deleted_resources(fhir: FhirSession) -> None:
    assert_outcome(fhir.get(url(fhir, f"Patient/{unique('nobody')}")), 404)
    pid = unique("pat")
    fhir.put(url(fhir, f"Patient/{pid}"), json={"resourceType": "Patient", "id": pid})
    assert fhir.delete(url(fhir, f"Patient/{pid}")).status_code == 200
    assert_outcome(fhir.get(url(fhir, f"Patient/{pid}")), 410)


def test_concurrent_requests_are_all_answered(fhir_server: LocalServer) -> None:
    pid = unique("pat")
    base = fhir_server.base_url

    def work(i: int) -> int:
        if i % 2:
            body = observation(f"Patient/{pid}", "718-7", "2025-02-03", i)
            return requests.post(f"{base}/Observation", json=body, headers=FHIR_JSON).status_code
        return requests.get(f"{base}/Observation?patient={pid}", headers=FHIR_JSON).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(work, range(40)))
    assert statuses.count(201) == 20
    assert statuses.count(200) == 20
    total = requests.get(f"{base}/Observation?patient={pid}&_summary=count").json()["total"]
    assert total == 20


def test_stop_ends_the_process(fresh_fhir_server: LocalServer) -> None:
    server = fresh_fhir_server
    pid = server.pid
    assert requests.get(f"{server.base_url}/metadata").status_code == 200
    server.stop()
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# ---------------------------------------------------------------- search index and rollback
MRN = "urn:test:mrn"


def put_entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
    }


def index_fixture(tag: str) -> list[dict[str, Any]]:
    """Patients and resources pointing at them every way a search can match (ids carry `tag`)."""
    p1, p2, group = f"{tag}-p1", f"{tag}-p2", f"{tag}-g1"
    patients = [
        {"resourceType": "Patient", "id": p1, "gender": "female",
         "identifier": [{"system": MRN, "value": f"AbC-{tag}"},
                        {"type": {"text": f"Chart {tag}"}, "value": f"chart-{tag}"}]},
        {"resourceType": "Patient", "id": p2, "gender": "male",
         "identifier": [{"system": MRN, "value": f"xyz-{tag}"}, {"value": f"nosys-{tag}"}]},
    ]
    rows = [  # (id, subject reference, code, date)
        ("o1", f"Patient/{p1}", "718-7", "2025-01-05"),
        ("o2", f"Patient/{p1}", "2160-0", "2025-03-05"),
        ("o3", f"Patient/{p2}", "718-7", "2025-02-05"),
        ("o4", f"Group/{group}", "718-7", "2025-04-05"),
        ("o5", f"http://elsewhere.example/fhir/Patient/{p1}", "718-7", "2025-05-05"),
        ("o6", f"Patient/{p1}", "718-7", "2025-06-05"),
    ]
    observations = []
    for oid, subject, code, day in rows:
        obs = observation(subject, code, day, 1.0)
        obs["id"] = f"{tag}-{oid}"
        obs["identifier"] = [{"system": f"urn:test:obs:{tag}", "value": oid.upper()}]
        observations.append(obs)
    # A performer pointing at p2 does not make o2 one of p2's; o6 (p1's) has p2's o3 as member,
    # so a chained search from p1's Observations must still see Observations of other patients.
    observations[1]["performer"] = [{"reference": f"Patient/{p2}"}]
    observations[5]["hasMember"] = [{"reference": f"Observation/{tag}-o3"}]
    subject = {"resourceType": "ResearchSubject", "id": f"{tag}-rs1", "status": "candidate",
               "identifier": [{"system": "urn:test:rs", "value": f"rs-{tag}"}],
               "study": {"reference": "ResearchStudy/s1"},
               "individual": {"reference": f"Patient/{p1}"}}
    return [*patients, *observations, subject]


def index_queries(tag: str) -> list[str]:
    p1, p2 = f"{tag}-p1", f"{tag}-p2"
    obs_sys = f"urn:test:obs:{tag}"
    return [
        f"Observation?patient={p1}",
        f"Observation?patient=Patient/{p1}",
        f"Observation?subject=Patient/{p1}",
        f"Observation?subject={p1}",
        f"Observation?subject:Patient={p1}",
        f"Observation?subject=Patient/{p1},Patient/{p2}",
        f"Observation?patient={p1},{p2},nobody-{tag}",
        f"Observation?subject=Group/{tag}-g1",
        f"Observation?subject=Patient/{p2},Group/{tag}-g1",
        f"Observation?subject=http://elsewhere.example/fhir/Patient/{p1}",
        f"Observation?patient={p2}",
        f"Observation?patient={p1}&code={LOINC}|718-7",
        f"Observation?patient={p1}&date=ge2025-03-01",
        f"Observation?patient={p1}&_sort=-date",
        f"Observation?patient={p1}&_sort=date&_count=2&_offset=1",
        f"Observation?patient={p1}&_count=2&_offset=1",
        f"Observation?patient={p1}&_summary=count",
        f"Observation?patient={p1}&patient.gender=male",  # finds nothing
        f"Observation?subject={p1}&patient.gender=female",
        f"Observation?patient={p1}&has-member:Observation.code={LOINC}|718-7",
        f"Observation?patient={p1}&subject:not=Group/{tag}-g1",
        f"Observation?identifier={obs_sys}|o2,{obs_sys}|O3",
        f"Observation?identifier=O1&patient={p1}",
        f"Observation?identifier={obs_sys}|",
        f"Observation?identifier={obs_sys}|o1&patient={p2}",  # finds nothing
        f"Patient?identifier={MRN}|abc-{tag}",
        f"Patient?identifier={MRN.upper()}|ABC-{tag}",
        f"Patient?identifier=ABC-{tag}",
        f"Patient?identifier=|nosys-{tag}",
        f"Patient?identifier=|abc-{tag}",  # finds nothing
        f"Patient?identifier=chart {tag}",
        f"Patient?identifier={MRN}|abc-{tag},{MRN}|xyz-{tag}&gender=male",
        f"Patient?identifier={MRN}|abc-{tag}&_revinclude=Observation:patient",
        f"ResearchSubject?identifier=urn:test:rs|rs-{tag}&patient={p1}",
        f"ResearchSubject?identifier=urn:test:rs|rs-{tag}&patient={p2}",  # finds nothing
        "ResearchSubject?study=ResearchStudy/s1&_include=ResearchSubject:individual",
        "ResearchSubject?study=s1&_lastUpdated=ge2000-01-01T00:00:00.000Z&_count=1",
        f"ResearchSubject?study=ResearchStudy/none-{tag}",  # finds nothing
    ]


def search_answer(session: FhirSession, query: str) -> tuple[int, list[tuple[str, str]]]:
    response = session.get(url(session, query))
    assert response.status_code == 200, f"{query}: {response.text}"
    bundle = response.json()
    found = [(e["search"]["mode"], f"{e['resource']['resourceType']}/{e['resource']['id']}")
             for e in bundle.get("entry", [])]
    return bundle["total"], found


@contextlib.contextmanager
def own_server(**env: str) -> Iterator[LocalServer]:
    """A server of the test's own, started with these environment variables."""
    try:
        server = start_local_server(env=env)
    except NodeNotFoundError as exc:
        unavailable(f"local FHIR server unavailable: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def unindexed_fhir() -> Iterator[FhirSession]:
    """A server of the test's own that answers every search by a full scan."""
    with own_server(LOCAL_FHIR_SEARCH_INDEX="0") as server:
        assert "search index off" in server.output()
        with FhirSession(server.base_url) as session:
            yield session


def test_indexed_searches_find_what_a_full_scan_finds(
    fhir: FhirSession, unindexed_fhir: FhirSession
) -> None:
    tag = unique("ix")
    resources = index_fixture(tag)
    for session in (fhir, unindexed_fhir):
        assert transaction(session, [put_entry(r) for r in resources]).status_code == 200
    queries = index_queries(tag)

    def compare() -> int:
        non_empty = 0
        for query in queries:
            indexed = search_answer(fhir, query)
            assert indexed == search_answer(unindexed_fhir, query), query
            non_empty += indexed[0] > 0
        return non_empty

    # All but the 5 queries built to find nothing find something: equal answers are not just
    # two empty bundles.
    assert compare() == len(queries) - 5
    total, found = search_answer(fhir, f"Observation?subject=Patient/{tag}-p1,Patient/{tag}-p2")
    assert {ref for _, ref in found} == {f"Observation/{tag}-{o}" for o in ("o1", "o2", "o3", "o6")}

    # Writes move resources between index entries: an Observation changes patient, one is
    # deleted, a Patient loses an identifier; the answers must follow.
    moved = {**resources[2], "subject": {"reference": f"Patient/{tag}-p2"}}
    renamed = {**resources[0], "identifier": [{"system": MRN, "value": f"new-{tag}"}]}
    for session in (fhir, unindexed_fhir):
        assert session.put(url(session, f"Observation/{tag}-o1"), json=moved).status_code == 200
        assert session.put(url(session, f"Patient/{tag}-p1"), json=renamed).status_code == 200
        assert session.delete(url(session, f"Observation/{tag}-o6")).status_code == 200
    compare()
    assert search_answer(fhir, f"Observation?patient={tag}-p2")[1] == [
        ("match", f"Observation/{tag}-o1"), ("match", f"Observation/{tag}-o3")]
    assert search_answer(fhir, f"Patient?identifier={MRN}|abc-{tag}")[0] == 0


def state_of(session: FhirSession, refs: list[str], queries: list[str]) -> dict[str, Any]:
    """Everything a rollback must restore: reads (with meta), histories and search answers."""
    state: dict[str, Any] = {}
    for ref in refs:
        read = session.get(url(session, ref))
        state[ref] = (read.status_code, read.json() if read.status_code == 200 else None)
        history = session.get(url(session, f"{ref}/_history"))
        state[f"{ref}/_history"] = (
            history.status_code,
            [e["resource"] for e in history.json().get("entry", [])]
            if history.status_code == 200 else None,
        )
    for query in queries:
        state[query] = search_answer(session, query)
    return state


def test_failed_transaction_rolls_back_creates_updates_and_deletes_exactly(
    fhir: FhirSession,
) -> None:
    tag = unique("rb")
    resources = index_fixture(tag)
    assert transaction(fhir, [put_entry(r) for r in resources]).status_code == 200
    p1, p2 = resources[0], resources[1]
    o1, o2 = resources[2], resources[3]
    # p2 gets a second version; a deleted Patient stays gone (410) unless re-created.
    assert fhir.put(url(fhir, f"Patient/{tag}-p2"), json={**p2, "gender": "other"}).ok
    gone = {"resourceType": "Patient", "id": f"{tag}-gone"}
    assert fhir.put(url(fhir, f"Patient/{tag}-gone"), json=gone).status_code == 201
    assert fhir.delete(url(fhir, f"Patient/{tag}-gone")).status_code == 200

    refs = [f"Patient/{tag}-p1", f"Patient/{tag}-p2", f"Patient/{tag}-gone",
            f"Patient/{tag}-new", f"Observation/{tag}-o1", f"Observation/{tag}-o2"]
    queries = [*index_queries(tag), f"Patient?identifier={MRN}|dup-{tag}",
               f"Observation?patient={tag}-new", f"Patient?_id={tag}-p1,{tag}-p2,{tag}-new"]
    before = state_of(fhir, refs, queries)

    duplicate = [{"system": MRN, "value": f"dup-{tag}"}]
    failing = [
        {"request": {"method": "DELETE", "url": f"Observation/{tag}-o1"}},
        {"request": {"method": "DELETE", "url": f"Patient/{tag}-p1"}},
        post_entry({"resourceType": "Patient", "identifier": duplicate}),
        put_entry({"resourceType": "Patient", "id": f"{tag}-new", "identifier": duplicate}),
        put_entry({**p2, "gender": "unknown", "identifier": duplicate}),
        put_entry({**gone, "gender": "female"}),
        put_entry({**o2, "subject": {"reference": f"Patient/{tag}-new"}}),
        put_entry({**o1, "status": "amended"}),  # re-created after its delete above
        # Fails only because the entries above were applied: three Patients now share it.
        {"resource": {"resourceType": "Patient", "gender": "male"},
         "request": {"method": "PUT", "url": f"Patient?identifier={MRN}|dup-{tag}"}},
    ]
    failed = transaction(fhir, failing)
    body = assert_outcome(failed, 412)
    assert f"identifier={MRN}|dup-{tag}" in body["issue"][0]["diagnostics"]

    assert state_of(fhir, refs, queries) == before
    # Version counters were restored too: the next change of p2 is version 3, of p1 version 2.
    assert fhir.put(url(fhir, f"Patient/{tag}-p2"), json=p2).json()["meta"]["versionId"] == "3"
    renamed = {**p1, "gender": "male"}
    assert fhir.put(url(fhir, f"Patient/{tag}-p1"), json=renamed).json()["meta"]["versionId"] == "2"


@pytest.fixture
def slow_export() -> Iterator[FhirSession]:
    """A server of the test's own that writes an export one resource every 100 ms."""
    with own_server(LOCAL_FHIR_EXPORT_SLICE="1", LOCAL_FHIR_EXPORT_PAUSE_MS="100") as server, \
            FhirSession(server.base_url) as session:
        yield session


def test_an_export_is_written_behind_its_kick_off_and_holds_the_resources_of_that_instant(
        slow_export: FhirSession) -> None:
    fhir = slow_export
    for n in range(5):
        assert fhir.put(url(fhir, f"Patient/p{n}"),
                        json={"resourceType": "Patient", "id": f"p{n}"}).status_code == 201
    kick = fhir.get(url(fhir, "$export?_type=Patient"), headers={"Prefer": "respond-async"})
    assert kick.status_code == 202
    status_url = kick.headers["Content-Location"]
    # While it is written (five resources, 100 ms apart) the server answers, and says how far
    # it has read; what changes meanwhile is not in the export.
    polled = fhir.get(status_url)
    assert (polled.status_code, polled.headers["Retry-After"]) == (202, "1")
    assert re.fullmatch(r"\d+% of the resources read", polled.headers["X-Progress"])
    assert fhir.put(url(fhir, "Patient/p-late"),
                    json={"resourceType": "Patient", "id": "p-late"}).status_code == 201
    assert fhir.delete(url(fhir, "Patient/p0")).status_code in (200, 204)
    for _ in range(20000):  # round trips, not sleeps: about half a second of them is needed
        manifest = fhir.get(status_url)
        if manifest.status_code != 202:
            break
    assert manifest.status_code == 200
    [output] = manifest.json()["output"]
    lines = fhir.get(output["url"]).text.splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == [f"p{n}" for n in range(5)]
