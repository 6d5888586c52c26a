"""FhirClient against HAPI-shaped answers: every status path, retries, errors, paging, caps."""

from __future__ import annotations

import email.utils
import json
import logging

import pytest
import requests
import responses

from service.fhir.errors import (
    FhirAuthError,
    FhirConflict,
    FhirError,
    FhirFatalError,
    FhirNotFound,
    FhirProtocolError,
    FhirRecordTooLarge,
    FhirTemporaryError,
    outcome_message,
)
from service.fhir.retries import BACKOFF_BASE_SECONDS, parse_retry_after
from tests.support.fhir_testkit import BASE, hapi

FHIR_JSON = "application/fhir+json;charset=utf-8"


def _json(status: int, body: object, **headers: str) -> dict:
    return {
        "status": status,
        "body": json.dumps(body),
        "content_type": FHIR_JSON,
        "headers": headers,
    }


# ---------------------------------------------------------------------- successful answers


@responses.activate
def test_metadata_200_sends_fhir_accept_and_a_timeout(make_client, settings):
    responses.get(f"{BASE}/metadata", **_json(200, hapi("metadata.json")))
    client, session = make_client(settings)

    cs = client.capabilities()

    assert cs["fhirVersion"] == "4.0.1"
    sent = responses.calls[0].request
    assert sent.headers["Accept"] == "application/fhir+json"
    assert "Authorization" not in sent.headers
    assert session.calls[0]["timeout"] == settings.fhir_timeout
    assert session.calls[0]["allow_redirects"] is False
    assert client.request_count == 1


@responses.activate
def test_read_200_returns_the_resource(fhir):
    responses.get(f"{BASE}/Patient/pt-1", **_json(200, hapi("patient-read.json")))
    assert fhir.read("Patient", "pt-1")["birthDate"] == "2014-03-02"


@responses.activate
def test_transaction_201_and_200_entries_with_history_locations(fhir):
    responses.post(BASE, **_json(200, hapi("transaction-response-research-subjects.json")))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "ResearchSubject"},
                "request": {"method": "PUT", "url": u},
            }
            for u in ("ResearchSubject?identifier=a|1", "ResearchSubject?identifier=a|2")
        ],
    }
    answer = fhir.transaction(bundle)
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses == ["201 Created", "200 OK"]
    sent = responses.calls[0].request
    assert sent.headers["Content-Type"].startswith("application/fhir+json")
    assert json.loads(sent.body)["type"] == "transaction"


def test_read_refuses_ids_that_would_change_the_url(fhir):
    for bad in ("1/_history/2", "1?_id=2", "../metadata", ""):
        with pytest.raises(ValueError):
            fhir.read("Patient", bad)


# ---------------------------------------------------------------------- fatal 4xx, no retry


@responses.activate
@pytest.mark.parametrize(
    ("status", "fixture", "cls", "text"),
    [
        (404, "outcome-404-not-known.json", FhirNotFound, "is not known"),
        (410, "outcome-410-deleted.json", FhirNotFound, "deleted"),
        (400, "outcome-400-unknown-param.json", FhirFatalError, "Unknown search parameter"),
        (412, "outcome-412-multiple-matches.json", FhirConflict, "matched 2 resources"),
        (403, "outcome-400-unknown-param.json", FhirAuthError, "Unknown search parameter"),
    ],
)
def test_4xx_is_fatal_with_the_outcome_message_and_never_retried(
    fhir, sleeps, status, fixture, cls, text
):
    responses.get(f"{BASE}/Patient/pt-missing", **_json(status, hapi(fixture)))

    with pytest.raises(cls) as caught:
        fhir.read("Patient", "pt-missing")

    assert text in str(caught.value)
    assert caught.value.status == status
    assert caught.value.retryable is False
    assert isinstance(caught.value, FhirFatalError)
    assert fhir.request_count == 1
    assert sleeps == []


@responses.activate
def test_401_with_a_static_token_is_fatal_and_not_retried(make_client, settings, sleeps):
    settings = settings.__class__(
        **{**settings.__dict__, "fhir_auth": "bearer", "fhir_bearer_token": "s3cret-token"}
    )
    client, _ = make_client(settings)
    responses.get(f"{BASE}/metadata", **_json(401, {"resourceType": "OperationOutcome"}))
    with pytest.raises(FhirAuthError) as caught:
        client.capabilities()
    assert responses.calls[0].request.headers["Authorization"] == "Bearer s3cret-token"
    assert "s3cret-token" not in str(caught.value)
    assert client.request_count == 1 and sleeps == []


# ---------------------------------------------------------------------- temporary errors, retries


@responses.activate
def test_429_honours_retry_after_seconds(fhir, sleeps):
    responses.get(
        f"{BASE}/metadata",
        **_json(429, {"resourceType": "OperationOutcome"}, **{"Retry-After": "7"}),
    )
    responses.get(f"{BASE}/metadata", **_json(200, hapi("metadata.json")))

    assert fhir.capabilities()["resourceType"] == "CapabilityStatement"
    assert sleeps == [7.0]
    assert fhir.request_count == 2


@responses.activate
def test_503_honours_retry_after_http_date(fhir, sleeps, clock):
    when = email.utils.formatdate(clock.now + 12, usegmt=True)
    responses.get(
        f"{BASE}/metadata",
        **_json(503, {"resourceType": "OperationOutcome"}, **{"Retry-After": when}),
    )
    responses.get(f"{BASE}/metadata", **_json(200, hapi("metadata.json")))

    fhir.capabilities()
    assert len(sleeps) == 1 and 11 <= sleeps[0] <= 12


@responses.activate
def test_a_retry_after_too_long_to_wait_is_passed_on_instead_of_blocking(fhir, sleeps):
    responses.get(
        f"{BASE}/metadata",
        **_json(429, {"resourceType": "OperationOutcome"}, **{"Retry-After": "3600"}),
    )
    with pytest.raises(FhirTemporaryError) as caught:
        fhir.capabilities()
    assert caught.value.retry_after == 3600
    assert sleeps == []


@responses.activate
def test_500_is_retried_with_exponential_backoff_then_temporary_error(fhir, sleeps, settings):
    for _ in range(settings.fhir_max_retries + 1):
        responses.get(f"{BASE}/metadata", **_json(500, hapi("outcome-500.json")))

    with pytest.raises(FhirTemporaryError) as caught:
        fhir.capabilities()

    assert "Unable to acquire JDBC Connection" in str(caught.value)
    assert caught.value.retryable is True and caught.value.status == 500
    assert fhir.request_count == settings.fhir_max_retries + 1
    # jitter is fixed at 1.0 in the tests: the delays are the backoff ceilings
    assert sleeps == [BACKOFF_BASE_SECONDS * 2**n for n in range(settings.fhir_max_retries)]


@responses.activate
def test_backoff_uses_jitter(make_client, settings, sleeps):
    client, _ = make_client(settings)
    client._jitter = lambda: 0.25  # noqa: SLF001 - the jitter source is injectable by design
    responses.get(f"{BASE}/metadata", **_json(503, hapi("outcome-500.json")))
    responses.get(f"{BASE}/metadata", **_json(200, hapi("metadata.json")))
    client.capabilities()
    assert sleeps == [BACKOFF_BASE_SECONDS * 0.25]


@responses.activate
@pytest.mark.parametrize("status", [408, 502, 503, 504])
def test_408_and_5xx_are_retried_and_can_succeed(fhir, sleeps, status):
    responses.get(f"{BASE}/metadata", status=status, body="")
    responses.get(f"{BASE}/metadata", **_json(200, hapi("metadata.json")))
    assert fhir.capabilities()["kind"] == "instance"
    assert len(sleeps) == 1


@responses.activate
def test_html_error_page_is_a_temporary_error_without_the_html(fhir, settings):
    for _ in range(settings.fhir_max_retries + 1):
        responses.get(
            f"{BASE}/metadata", status=502, body=hapi("error-502.html"), content_type="text/html"
        )
    with pytest.raises(FhirTemporaryError) as caught:
        fhir.capabilities()
    message = str(caught.value)
    assert "502" in message and "text/html" in message
    assert "<html" not in message and "nginx" not in message


@responses.activate
@pytest.mark.parametrize(
    "exc",
    [
        requests.ReadTimeout("read timed out"),
        requests.ConnectTimeout("connect timed out"),
        requests.ConnectionError("[Errno 111] Connection refused"),
    ],
    ids=["read-timeout", "connect-timeout", "connection-refused"],
)
def test_transport_errors_are_retried_then_temporary(fhir, sleeps, settings, exc):
    for _ in range(settings.fhir_max_retries + 1):
        responses.get(f"{BASE}/metadata", body=exc)
    with pytest.raises(FhirTemporaryError) as caught:
        fhir.capabilities()
    assert caught.value.status is None
    assert "hapi.test" in str(caught.value)
    assert len(sleeps) == settings.fhir_max_retries


@responses.activate
def test_a_timeout_then_success(fhir, sleeps):
    responses.get(f"{BASE}/metadata", body=requests.ReadTimeout("slow"))
    responses.get(f"{BASE}/metadata", **_json(200, hapi("metadata.json")))
    assert fhir.capabilities()["resourceType"] == "CapabilityStatement"
    assert len(sleeps) == 1


@responses.activate
def test_non_idempotent_post_is_not_retried_after_a_500(fhir, sleeps):
    responses.post(BASE, **_json(500, hapi("outcome-500.json")))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    }
    with pytest.raises(FhirTemporaryError):
        fhir.transaction(bundle)
    assert fhir.request_count == 1 and sleeps == []


@responses.activate
def test_non_idempotent_post_is_retried_when_the_server_refused_it(fhir, sleeps):
    responses.post(BASE, **_json(503, hapi("outcome-500.json"), **{"Retry-After": "2"}))
    responses.post(
        BASE,
        **_json(
            200,
            {
                "resourceType": "Bundle",
                "type": "transaction-response",
                "entry": [
                    {"response": {"status": "201 Created", "location": "Patient/9/_history/1"}}
                ],
            },
        ),
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    }
    fhir.transaction(bundle)
    assert sleeps == [2.0]


@responses.activate
def test_conditional_put_transaction_is_retried_after_a_500(fhir, sleeps):
    responses.post(BASE, **_json(500, hapi("outcome-500.json")))
    responses.post(BASE, **_json(200, hapi("transaction-response-research-subjects.json")))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "ResearchSubject"},
                "request": {"method": "PUT", "url": f"ResearchSubject?identifier=x|{i}"},
            }
            for i in range(2)
        ],
    }
    assert len(fhir.transaction(bundle)["entry"]) == 2
    assert len(sleeps) == 1


# ---------------------------------------------------------------------- answers that are not FHIR


@responses.activate
def test_invalid_json_in_a_200_is_a_protocol_error_not_retried(fhir, sleeps):
    responses.get(
        f"{BASE}/metadata", status=200, body='{"resourceType": "Capab', content_type=FHIR_JSON
    )
    with pytest.raises(FhirProtocolError) as caught:
        fhir.capabilities()
    assert "invalid JSON" in str(caught.value)
    assert sleeps == []


@responses.activate
def test_html_page_in_a_200_is_a_protocol_error(fhir):
    responses.get(
        f"{BASE}/metadata",
        status=200,
        body="<html><body>Login</body></html>",
        content_type="text/html",
    )
    with pytest.raises(FhirProtocolError) as caught:
        fhir.capabilities()
    assert "text/html" in str(caught.value)


@responses.activate
def test_a_redirect_is_an_error_telling_to_fix_the_base_url(fhir):
    responses.get(
        f"{BASE}/metadata", status=301, headers={"Location": "https://hapi.test/baseR4/metadata"}
    )
    with pytest.raises(FhirProtocolError) as caught:
        fhir.capabilities()
    assert "FHIR_BASE_URL" in str(caught.value)
    assert len(responses.calls) == 1


@responses.activate
def test_a_transaction_answered_with_the_wrong_bundle_type_is_rejected(fhir):
    responses.post(
        BASE, **_json(200, {"resourceType": "Bundle", "type": "batch-response", "entry": []})
    )
    with pytest.raises(FhirProtocolError):
        fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": []})


# ---------------------------------------------------------------------- paging


@responses.activate
def test_search_follows_hapi_getpages_links_as_given(fhir):
    page1, page2 = (
        hapi("searchset-observation-page1.json"),
        hapi("searchset-observation-page2.json"),
    )
    responses.get(f"{BASE}/Observation", **_json(200, page1))
    responses.get(BASE, **_json(200, page2))

    found = list(fhir.search("Observation", {"patient": "pt-1", "_count": "2"}))

    assert [r["id"] for r in found] == ["obs-hb-2", "obs-wt-2", "obs-wt-1"]
    assert fhir.request_count == 2
    assert responses.calls[1].request.url == page1["link"][1]["url"]


@responses.activate
def test_search_follows_offset_links_of_other_servers(fhir):
    first = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "next", "url": f"{BASE}/Condition?patient=pt-1&_count=1&_offset=1"}],
        "entry": [
            {"resource": {"resourceType": "Condition", "id": "c1"}, "search": {"mode": "match"}}
        ],
    }
    second = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "Condition", "id": "c2"}, "search": {"mode": "match"}}
        ],
    }
    responses.get(
        f"{BASE}/Condition",
        **_json(200, first),
        match=[responses.matchers.query_param_matcher({"patient": "pt-1", "_count": "1"})],
    )
    responses.get(
        f"{BASE}/Condition",
        **_json(200, second),
        match=[
            responses.matchers.query_param_matcher(
                {"patient": "pt-1", "_count": "1", "_offset": "1"}
            )
        ],
    )
    assert [r["id"] for r in fhir.search("Condition", {"patient": "pt-1", "_count": "1"})] == [
        "c1",
        "c2",
    ]


@responses.activate
def test_page_cap_exceeded_is_an_error_never_a_truncated_result(make_client, settings):
    client, _ = make_client(settings.__class__(**{**settings.__dict__, "fhir_max_pages": 1}))
    responses.get(f"{BASE}/Observation", **_json(200, hapi("searchset-observation-page1.json")))
    responses.get(BASE, **_json(200, hapi("searchset-observation-page2.json")))
    with pytest.raises(FhirRecordTooLarge) as caught:
        list(client.search("Observation", {"patient": "pt-1"}))
    assert "FHIR_MAX_PAGES" in str(caught.value)


@responses.activate
def test_resource_cap_exceeded_is_an_error(make_client, settings):
    client, _ = make_client(settings.__class__(**{**settings.__dict__, "fhir_max_resources": 2}))
    responses.get(f"{BASE}/Observation", **_json(200, hapi("searchset-observation-page1.json")))
    responses.get(BASE, **_json(200, hapi("searchset-observation-page2.json")))
    with pytest.raises(FhirRecordTooLarge) as caught:
        list(client.search("Observation", {"patient": "pt-1"}))
    assert "FHIR_MAX_RESOURCES" in str(caught.value)


@responses.activate
def test_a_next_link_to_another_host_is_not_followed(fhir):
    page = hapi("searchset-observation-page1.json")
    page["link"][1]["url"] = "http://elsewhere.test/steal?_getpages=x"
    responses.get(f"{BASE}/Observation", **_json(200, page))
    with pytest.raises(FhirProtocolError) as caught:
        list(fhir.search("Observation", {"patient": "pt-1"}))
    assert "elsewhere.test" in str(caught.value)
    assert len(responses.calls) == 1


@responses.activate
def test_fewer_matches_than_total_without_a_next_link_is_an_error(fhir):
    page = hapi("searchset-observation-page1.json")
    page["link"] = page["link"][:1]  # total says 3, two entries, no next link
    responses.get(f"{BASE}/Observation", **_json(200, page))
    with pytest.raises(FhirProtocolError) as caught:
        list(fhir.search("Observation", {"patient": "pt-1"}))
    assert "3 matches" in str(caught.value)


@responses.activate
def test_outcome_entries_of_a_searchset_are_not_record_data(fhir):
    # A warning about the search is no record data; an error one fails the read (see
    # tests/fhir/test_read_answers.py).
    page = hapi("searchset-empty.json")
    warning = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "warning", "code": "informational", "diagnostics": "slow"}]}
    page["entry"] = [{"resource": warning, "search": {"mode": "outcome"}}]
    responses.get(f"{BASE}/Condition", **_json(200, page))
    assert list(fhir.search("Condition", {"patient": "pt-1"})) == []


# ---------------------------------------------------------------------- helpers


def test_outcome_message_puts_errors_before_warnings_and_truncates():
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "warning", "code": "informational", "diagnostics": "minor"},
            {"severity": "error", "code": "invalid", "details": {"text": "broken"}},
        ],
    }
    assert outcome_message(outcome) == "broken; minor"
    long = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "diagnostics": "x" * 900}],
    }
    assert len(outcome_message(long)) == 500
    assert outcome_message({"resourceType": "Patient"}) is None
    assert outcome_message("not json") is None


def test_parse_retry_after_forms():
    now = 1_800_000_000.0
    assert parse_retry_after("5", now) == 5
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now) == pytest.approx(
        30
    )
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_error_hierarchy_matches_the_shared_interface():
    assert issubclass(FhirNotFound, FhirFatalError) and issubclass(FhirFatalError, FhirError)
    assert issubclass(FhirTemporaryError, FhirError)
    assert FhirTemporaryError("x").retryable and not FhirFatalError("x").retryable


@responses.activate
def test_retries_are_logged_without_secrets(make_client, settings, caplog):
    settings = settings.__class__(
        **{**settings.__dict__, "fhir_auth": "bearer", "fhir_bearer_token": "tok-XYZ-123"}
    )
    client, _ = make_client(settings)
    responses.get(f"{BASE}/metadata", **_json(503, hapi("outcome-500.json")))
    responses.get(f"{BASE}/metadata", **_json(200, hapi("metadata.json")))
    with caplog.at_level(logging.DEBUG):
        client.capabilities()
    assert "retry 1/3" in caplog.text
    assert "tok-XYZ-123" not in caplog.text


@responses.activate
def test_mislabelled_json_is_read_but_xml_is_not(fhir):
    responses.get(
        f"{BASE}/metadata",
        status=200,
        body=json.dumps(hapi("metadata.json")),
        content_type="text/plain",
    )
    assert fhir.capabilities()["kind"] == "instance"
    responses.get(
        f"{BASE}/Patient/pt-1",
        status=200,
        body='<Patient xmlns="http://hl7.org/fhir"/>',
        content_type="application/fhir+xml",
    )
    with pytest.raises(FhirProtocolError) as caught:
        fhir.read("Patient", "pt-1")
    assert "application/fhir+xml" in str(caught.value)


@responses.activate
def test_an_unasked_304_is_a_protocol_error(fhir, sleeps):
    responses.get(f"{BASE}/Patient/pt-1", status=304)
    with pytest.raises(FhirProtocolError) as caught:
        fhir.read("Patient", "pt-1")
    assert "304" in str(caught.value) and "conditional" in str(caught.value)
    assert sleeps == []
