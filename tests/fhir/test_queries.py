"""The record read: one batch of searches, one more round for next pages, never partial data."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from service.fhir import queries as retrieval
from service.fhir.errors import FhirFatalError, FhirNotFound, FhirProtocolError, FhirTemporaryError
from service.fhir.record_read import record_resources
from service.usecases.patient_record import read_record_of_codes
from tests.support.fhir_testkit import BASE, hapi

PT1 = {"reference": "Patient/pt-1"}
CODES = ("http://loinc.org|29463-7", "http://loinc.org|718-7", "http://loinc.org|8302-2")
FHIR_JSON = "application/fhir+json"


def _params(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _searchset(*resources: dict, total: int | None = None, next_url: str | None = None) -> dict:
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    if resources:
        bundle["entry"] = [{"resource": r, "search": {"mode": "match"}} for r in resources]
    return bundle


def _ok(resource: dict) -> dict:
    return {"response": {"status": "200 OK"}, "resource": resource}


class BatchServer:
    """Answers batch POSTs entry by entry through a function of the entry URL."""

    def __init__(self, answer):
        self.answer = answer
        self.batches: list[list[str]] = []

    def __call__(self, request):
        bundle = json.loads(request.body)
        assert bundle["type"] == "batch"
        urls = [e["request"]["url"] for e in bundle["entry"]]
        assert all(e["request"]["method"] == "GET" for e in bundle["entry"])
        self.batches.append(urls)
        body = {
            "resourceType": "Bundle",
            "type": "batch-response",
            "entry": [self.answer(u) for u in urls],
        }
        return 200, {"Content-Type": FHIR_JSON}, json.dumps(body)


def _record_answer(url: str) -> dict:
    """A small record: the Patient, paged Observations (HAPI _getpages), one MedicationRequest."""
    if url == "Patient/pt-1":
        return _ok(hapi("patient-read.json"))
    if url.startswith("Observation?"):
        return _ok(hapi("searchset-observation-page1.json"))
    if url.startswith("MedicationRequest?"):
        return _ok(hapi("searchset-medicationrequest-include.json"))
    if url.startswith("?_getpages="):
        return _ok(hapi("searchset-observation-page2.json"))
    return _ok(hapi("searchset-empty.json"))


# ---------------------------------------------------------------------- the batch itself


def test_record_queries_cover_every_type_with_patient_search_and_mapping_codes():
    queries = retrieval.record_queries("Patient/pt-1", CODES, page_size=200)
    by_label = {q.label: q.url for q in queries}

    assert by_label["Patient"] == "Patient/pt-1"
    assert set(by_label) == {"Patient", *retrieval.RECORD_TYPES, retrieval.ENROLMENT_LABEL}
    # Vaccinations and this patient's ResearchSubjects in every study are in the same batch.
    assert by_label["Immunization"].startswith("Immunization?")
    assert by_label[retrieval.ENROLMENT_LABEL].startswith("ResearchSubject?")
    for label, url in by_label.items():
        if label == "Patient":
            continue
        params = _params(url)
        assert params["patient"] == ["pt-1"], url
        assert params["_count"] == ["200"]
        assert "subject" not in params and "$everything" not in url
    obs = _params(by_label["Observation"])
    assert obs["code"] == [",".join(CODES)]
    assert obs["_sort"] == ["-date"]
    for med in ("MedicationRequest", "MedicationStatement", "MedicationAdministration"):
        assert _params(by_label[med])["_include"] == [f"{med}:medication"]
    # no server-side quantity filters: the engine compares values after unit conversion
    assert not any("value-quantity" in url for url in by_label.values())


def test_codes_come_from_the_argument_and_wildcards_search_the_system():
    queries = retrieval.record_queries(
        "p", ["urn:trial-eligibility:criterion|*", "urn:x|a,b", "http://loinc.org|1-8"], page_size=5
    )
    code = _params(next(q.url for q in queries if q.label == "Observation"))["code"][0]
    assert code.split(",")[0] == "http://loinc.org|1-8"
    assert "urn:trial-eligibility:criterion|" in code.split(",")
    assert r"urn:x|a\,b" in code  # a comma inside a code is escaped, not an OR


def test_without_observation_codes_no_observation_search_is_made():
    labels = [q.label for q in retrieval.record_queries("p", [], page_size=5)]
    assert "Observation" not in labels and "Condition" in labels


def test_write_back_state_is_read_in_the_same_batch():
    queries = retrieval.record_queries(
        "pt-1",
        CODES,
        page_size=10,
        research_subject_studies=["a-study", "b-study"],
        research_study_keys=["a-study"],
    )
    by_label = {q.label: q.url for q in queries}
    assert _params(by_label["ResearchSubject"])["identifier"] == [
        "urn:trial-eligibility:research-subject|a-study/pt-1,"
        "urn:trial-eligibility:research-subject|b-study/pt-1"
    ]
    assert _params(by_label["ResearchStudy"])["identifier"] == [
        "urn:trial-eligibility:study|a-study"
    ]


@pytest.mark.parametrize("bad", ["", "pt 1", "1&_id=2", "../metadata", "a/b", "x" * 65, "Patient/"])
def test_a_malformed_patient_id_never_reaches_a_url(bad):
    with pytest.raises(ValueError):
        retrieval.record_queries(bad, CODES, page_size=10)


def test_normalize_patient_id_accepts_the_prefix():
    assert retrieval.normalize_patient_id(" Patient/abc-1.2 ") == "abc-1.2"


@responses.activate
def test_a_long_code_list_travels_in_the_batch_body_not_the_request_line(fhir):
    codes = [f"http://loinc.org|{n}-{n % 10}" for n in range(10000, 10400)]
    server = BatchServer(
        lambda u: (
            _ok(hapi("patient-read.json"))
            if u.startswith("Patient/")
            else _ok(hapi("searchset-empty.json"))
        )
    )
    responses.add_callback(responses.POST, BASE, callback=server)

    read_record_of_codes(fhir, "pt-1", codes)[0]

    request = responses.calls[0].request
    assert request.url == BASE  # the request line carries no query at all
    obs_url = next(u for u in server.batches[0] if u.startswith("Observation?"))
    assert len(obs_url) > 8000  # longer than many servers accept in a GET request line
    assert _params(obs_url)["code"][0].split(",") == sorted(codes)


# ---------------------------------------------------------------------- round trips


@responses.activate
def test_an_unpaged_record_costs_exactly_one_request(fhir):
    def answer(url):
        if url.startswith("Observation?"):
            page = hapi("searchset-observation-page1.json")
            page["link"] = page["link"][:1]
            page["total"] = 2
            return _ok(page)
        return _record_answer(url)

    responses.add_callback(responses.POST, BASE, callback=BatchServer(answer))

    record = read_record_of_codes(fhir, "pt-1", CODES)[0]

    assert fhir.request_count == 1
    assert record[0]["resourceType"] == "Patient"
    kinds = sorted(r["resourceType"] + "/" + r["id"] for r in record)
    assert kinds == sorted(
        [
            "Patient/pt-1",
            "Observation/obs-hb-2",
            "Observation/obs-wt-2",
            "MedicationRequest/mr-1",
            "MedicationRequest/mr-2",
            "Medication/med-pred",
        ]
    )


@responses.activate
def test_a_single_next_page_is_fetched_as_given_in_the_second_request(fhir):
    responses.add_callback(responses.POST, BASE, callback=BatchServer(_record_answer))
    page2 = hapi("searchset-observation-page2.json")
    responses.get(BASE, json=page2, content_type=FHIR_JSON)

    record = read_record_of_codes(fhir, "pt-1", CODES)[0]

    assert fhir.request_count == 2
    next_link = hapi("searchset-observation-page1.json")["link"][1]["url"]
    assert responses.calls[1].request.url == next_link
    weights = [r["id"] for r in record if r["resourceType"] == "Observation"]
    assert weights == ["obs-hb-2", "obs-wt-2", "obs-wt-1"]  # every body weight, old ones too


@responses.activate
def test_next_pages_of_several_searches_go_in_one_batch(fhir):
    conditions_next = f"{BASE}?_getpages=cond-1&_getpagesoffset=1&_count=1&_bundletype=searchset"

    def answer(url):
        if url.startswith("Condition?"):
            return _ok(
                _searchset(
                    {"resourceType": "Condition", "id": "c1", "subject": PT1},
                    total=2, next_url=conditions_next,
                )
            )
        if url.startswith("?_getpages=cond-1"):
            return _ok(
                _searchset({"resourceType": "Condition", "id": "c2", "subject": PT1}, total=2)
            )
        return _record_answer(url)

    server = BatchServer(answer)
    responses.add_callback(responses.POST, BASE, callback=server)

    record = read_record_of_codes(fhir, "pt-1", CODES)[0]

    assert fhir.request_count == 2
    assert sorted(server.batches[1]) == sorted(
        [
            "?_getpages=4c3f9a57-0d1e-4d4b-9b43-6c0d8f2e7a11&_getpagesoffset=2&_count=2&_pretty=true&_bundletype=searchset",
            "?_getpages=cond-1&_getpagesoffset=1&_count=1&_bundletype=searchset",
        ]
    )
    ids = {r["id"] for r in record}
    assert {"c1", "c2", "obs-wt-1"} <= ids


@responses.activate
def test_further_rounds_only_while_pages_remain(fhir):
    def answer(url):
        if url == "Condition?patient=pt-1&_offset=1":
            return _ok(
                _searchset(
                    {"resourceType": "Condition", "id": "c2", "subject": PT1},
                    total=3,
                    next_url=f"{BASE}/Condition?patient=pt-1&_offset=2",
                )
            )
        if url.startswith("Condition?"):
            return _ok(
                _searchset(
                    {"resourceType": "Condition", "id": "c1", "subject": PT1},
                    total=3,
                    next_url=f"{BASE}/Condition?patient=pt-1&_offset=1",
                )
            )
        return _record_answer(url)

    responses.add_callback(responses.POST, BASE, callback=BatchServer(answer))
    responses.get(BASE, json=hapi("searchset-observation-page2.json"), content_type=FHIR_JSON)
    responses.get(
        f"{BASE}/Condition",
        json=_searchset({"resourceType": "Condition", "id": "c3", "subject": PT1}, total=3),
        content_type=FHIR_JSON,
    )

    record = read_record_of_codes(fhir, "pt-1", CODES)[0]

    # batch, batch of the two next pages, then the last Condition page alone
    assert fhir.request_count == 3
    assert {"c1", "c2", "c3"} <= {r["id"] for r in record}


@responses.activate
def test_a_page_that_fails_inside_a_batch_is_fetched_alone(fhir):
    conditions_next = f"{BASE}?_getpages=cond-1&_getpagesoffset=1"

    def answer(url):
        if url.startswith("Condition?"):
            return _ok(
                _searchset(
                    {"resourceType": "Condition", "id": "c1", "subject": PT1},
                    total=2, next_url=conditions_next,
                )
            )
        if url.startswith("?_getpages="):
            return {
                "response": {
                    "status": "400 Bad Request",
                    "outcome": hapi("outcome-400-unknown-param.json"),
                }
            }
        return _record_answer(url)

    responses.add_callback(responses.POST, BASE, callback=BatchServer(answer))
    responses.get(
        BASE,
        json=hapi("searchset-observation-page2.json"),
        content_type=FHIR_JSON,
        match=[
            responses.matchers.query_param_matcher(
                {"_getpages": "4c3f9a57-0d1e-4d4b-9b43-6c0d8f2e7a11"}, strict_match=False
            )
        ],
    )
    responses.get(
        BASE,
        json=_searchset({"resourceType": "Condition", "id": "c2", "subject": PT1}, total=2),
        content_type=FHIR_JSON,
        match=[responses.matchers.query_param_matcher({"_getpages": "cond-1"}, strict_match=False)],
    )

    record = read_record_of_codes(fhir, "pt-1", CODES)[0]

    assert {"c1", "c2", "obs-wt-1"} <= {r["id"] for r in record}


@responses.activate
def test_medications_a_server_did_not_include_are_fetched_with_the_next_round(fhir):
    def answer(url):
        if url.startswith("MedicationRequest?"):
            page = hapi("searchset-medicationrequest-include.json")
            page["entry"] = page["entry"][:2]  # the server ignored _include
            return _ok(page)
        if url.startswith("Observation?"):
            return _ok(_searchset(total=0))
        return _record_answer(url)

    responses.add_callback(responses.POST, BASE, callback=BatchServer(answer))
    med = hapi("searchset-medicationrequest-include.json")["entry"][2]["resource"]
    responses.get(
        f"{BASE}/Medication",
        json=_searchset(med, total=1),
        content_type=FHIR_JSON,
        match=[responses.matchers.query_param_matcher({"_id": "med-pred", "_count": "500"})],
    )

    record = read_record_of_codes(fhir, "pt-1", CODES)[0]

    assert fhir.request_count == 2
    assert [r for r in record if r["resourceType"] == "Medication"] == [med]


@responses.activate
def test_an_included_medication_repeated_by_several_searches_appears_once(fhir):
    def answer(url):
        if url.startswith(("MedicationRequest?", "MedicationStatement?")):
            return _ok(hapi("searchset-medicationrequest-include.json"))
        if url.startswith("Observation?"):
            return _ok(_searchset(total=0))
        return _record_answer(url)

    responses.add_callback(responses.POST, BASE, callback=BatchServer(answer))
    record = read_record_of_codes(fhir, "pt-1", CODES)[0]
    assert [r["id"] for r in record if r["resourceType"] == "Medication"] == ["med-pred"]


# ---------------------------------------------------------------------- failures: no partial record


@responses.activate
def test_unknown_patient_is_not_found(fhir):
    def answer(url):
        if url.startswith("Patient/"):
            return hapi("batch-response-entry-404.json")
        return _ok(hapi("searchset-empty.json"))

    responses.add_callback(responses.POST, BASE, callback=BatchServer(answer))
    with pytest.raises(FhirNotFound) as caught:
        read_record_of_codes(fhir, "pt-missing", CODES)[0]
    assert "Patient/pt-missing" in str(caught.value)


@responses.activate
@pytest.mark.parametrize(
    ("status", "cls"),
    [
        ("500 Internal Server Error", FhirTemporaryError),
        ("400 Bad Request", FhirFatalError),
        ("429 Too Many Requests", FhirTemporaryError),
    ],
)
def test_a_failed_search_entry_fails_the_whole_read(fhir, status, cls):
    def answer(url):
        if url.startswith("Consent?"):
            return {"response": {"status": status, "outcome": hapi("outcome-500.json")}}
        return _record_answer(url)

    responses.add_callback(responses.POST, BASE, callback=BatchServer(answer))
    with pytest.raises(cls) as caught:
        read_record_of_codes(fhir, "pt-1", CODES)[0]
    assert "Consent" in str(caught.value)


@responses.activate
def test_a_failing_next_page_fails_the_whole_read(fhir, settings):
    responses.add_callback(responses.POST, BASE, callback=BatchServer(_record_answer))
    for _ in range(settings.fhir_max_retries + 1):
        responses.get(BASE, status=503, body="", content_type="text/html")
    with pytest.raises(FhirTemporaryError):
        read_record_of_codes(fhir, "pt-1", CODES)[0]


def _capped_in_batch(url):
    if url.startswith("Observation?"):
        page = hapi("searchset-observation-page1.json")
        page["link"] = []
        return _ok(page)  # total 3, two entries, no next link: one match would be lost
    return _record_answer(url)


@responses.activate
def test_a_search_capped_inside_a_batch_is_rerun_alone_and_paged(fhir):
    responses.add_callback(responses.POST, BASE, callback=BatchServer(_capped_in_batch))
    responses.get(
        f"{BASE}/Observation", json=hapi("searchset-observation-page1.json"), content_type=FHIR_JSON
    )
    responses.get(BASE, json=hapi("searchset-observation-page2.json"), content_type=FHIR_JSON)

    record = read_record_of_codes(fhir, "pt-1", CODES)[0]

    observations = [r["id"] for r in record if r["resourceType"] == "Observation"]
    assert observations == ["obs-hb-2", "obs-wt-2", "obs-wt-1"]  # each once, none lost
    rerun = responses.calls[1].request
    assert rerun.method == "GET" and _params(rerun.url)["code"] == [",".join(CODES)]


@responses.activate
def test_a_search_capped_without_next_link_even_alone_is_an_error(fhir):
    responses.add_callback(responses.POST, BASE, callback=BatchServer(_capped_in_batch))
    capped = hapi("searchset-observation-page1.json")
    capped["link"] = []
    responses.get(f"{BASE}/Observation", json=capped, content_type=FHIR_JSON)
    with pytest.raises(FhirProtocolError) as caught:
        read_record_of_codes(fhir, "pt-1", CODES)[0]
    assert "3 matches" in str(caught.value)


@responses.activate
def test_the_batch_is_retried_on_503(fhir, sleeps):
    responses.post(BASE, status=503, headers={"Retry-After": "1"}, body="")
    responses.add_callback(responses.POST, BASE, callback=BatchServer(_record_answer))
    responses.get(BASE, json=hapi("searchset-observation-page2.json"), content_type=FHIR_JSON)
    assert read_record_of_codes(fhir, "pt-1", CODES)[0][0]["id"] == "pt-1"
    assert sleeps == [1.0]


@responses.activate
def test_a_batch_response_with_missing_entries_is_rejected(fhir):
    responses.post(
        BASE,
        json={"resourceType": "Bundle", "type": "batch-response", "entry": []},
        content_type=FHIR_JSON,
    )
    with pytest.raises(FhirProtocolError):
        read_record_of_codes(fhir, "pt-1", CODES)[0]


def test_record_resources_puts_the_patient_first_and_leaves_write_back_state_out():
    results = {
        "Observation": [{"resourceType": "Observation", "id": "o"}],
        "Patient": [{"resourceType": "Patient", "id": "p"}],
        "ResearchSubject": [{"resourceType": "ResearchSubject", "id": "rs"}],
        "ResearchStudy": [{"resourceType": "ResearchStudy", "id": "st"}],
        "Medication": [
            {"resourceType": "Medication", "id": "m"},
            {"resourceType": "Medication", "id": "m"},
        ],
    }
    assert [r["id"] for r in record_resources(results)] == ["p", "o", "m"]
