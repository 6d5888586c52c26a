"""Bulk Data export fault paths (responses): refusals, failed downloads, cancel, tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import responses

from service.core.settings import Settings
from service.fhir.bulk_export import (
    BulkDownloadFailed,
    BulkExport,
    BulkExportRefused,
    BulkExportUnsupported,
    ExportRequest,
    offers_export,
)
from service.fhir.client import FhirClient
from service.fhir.errors import FhirTemporaryError

BASE = "http://ehr.test/fhir"
STATUS = f"{BASE}/bulkstatus/job1"
FILE = f"{BASE}/files/Condition.ndjson"
REQUEST = ExportRequest(("Patient", "Condition"), ("Observation?code=x",))


def _client(**overrides: object) -> FhirClient:
    settings = Settings(fhir_base_url=BASE, fhir_max_retries=2, fhir_timeout=5.0, **overrides)
    return FhirClient(settings, sleep=lambda s: None, jitter=lambda: 1.0)


def _export(client: FhirClient, slept: list[float] | None = None) -> BulkExport:
    return BulkExport(client, sleep=(slept if slept is not None else []).append,
                      jitter=lambda: 1.0)


def _manifest(requires_token: bool = True) -> dict:
    return {"transactionTime": "2026-12-01T00:00:00Z", "request": f"{BASE}/$export",
            "requiresAccessToken": requires_token,
            "output": [{"type": "Condition", "url": FILE, "count": 1}], "error": []}


def _kick_off_ok() -> None:
    responses.get(f"{BASE}/$export", status=202, headers={"Content-Location": STATUS})


@responses.activate
def test_kick_off_404_or_405_means_no_export():
    for status in (404, 405):
        responses.get(f"{BASE}/$export", status=status)
        with pytest.raises(BulkExportUnsupported, match=f"no \\$export .*{status}"):
            _export(_client()).kick_off(REQUEST)
        responses.reset()


@responses.activate
def test_a_url_too_long_is_sent_again_as_a_post_of_parameters_keeping_the_filters():
    # HAPI's Jetty answers 414 to the GET with the mapped codes in _typeFilter.
    responses.get(f"{BASE}/$export", status=414)
    responses.post(f"{BASE}/$export", status=202, headers={"Content-Location": STATUS})
    export = _export(_client())
    request = ExportRequest(("Patient", "Observation"),
                            ("Observation?code=x", "Observation?code=y"),
                            since="2026-11-01T00:00:00Z")
    assert export.kick_off(request) == STATUS
    assert export.posted_kick_off and not export.type_filter_refused
    post = responses.calls[1].request
    assert post.method == "POST" and "?" not in post.url
    assert post.headers["Prefer"] == "respond-async"
    assert post.headers["Content-Type"].startswith("application/fhir+json")
    assert json.loads(post.body) == {"resourceType": "Parameters", "parameter": [
        {"name": "_outputFormat", "valueString": "application/fhir+ndjson"},
        {"name": "_type", "valueString": "Patient,Observation"},
        {"name": "_since", "valueInstant": "2026-11-01T00:00:00Z"},
        {"name": "_typeFilter", "valueString": "Observation?code=x"},
        {"name": "_typeFilter", "valueString": "Observation?code=y"}]}


@pytest.mark.parametrize("refusal", [405, 400, 404])
@responses.activate
def test_a_server_refusing_the_post_kick_off_exports_whole_types(refusal):
    responses.get(f"{BASE}/$export", status=414,
                  match=[responses.matchers.query_param_matcher(
                      {"_typeFilter": "Observation?code=x"}, strict_match=False)])
    responses.post(f"{BASE}/$export", status=refusal)
    _kick_off_ok()
    export = _export(_client())
    assert export.kick_off(REQUEST) == STATUS
    assert export.type_filter_refused and not export.posted_kick_off
    assert [c.request.method for c in responses.calls] == ["GET", "POST", "GET"]
    assert "_typeFilter" not in responses.calls[2].request.url
    assert export.requests["kick-off"] == 3


@responses.activate
def test_a_post_kick_off_is_not_sent_twice_after_a_connection_that_may_have_delivered_it():
    responses.get(f"{BASE}/$export", status=414)
    responses.post(f"{BASE}/$export", body=requests.ConnectionError("reset after sending"))
    with pytest.raises(FhirTemporaryError, match="kick-off: connection"):
        _export(_client()).kick_off(REQUEST)
    assert [c.request.method for c in responses.calls] == ["GET", "POST"]


@responses.activate
def test_a_refused_type_filter_is_dropped_once_and_another_refusal_is_final():
    responses.get(f"{BASE}/$export", status=400,
                  match=[responses.matchers.query_param_matcher(
                      {"_typeFilter": "Observation?code=x"}, strict_match=False)])
    _kick_off_ok()
    export = _export(_client())
    assert export.kick_off(REQUEST) == STATUS
    assert export.type_filter_refused and export.requests["kick-off"] == 2
    assert "_typeFilter" not in responses.calls[1].request.url

    responses.reset()
    responses.get(f"{BASE}/$export", status=403, json={
        "resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "forbidden",
                                                       "diagnostics": "not for you"}]})
    with pytest.raises(BulkExportRefused, match="kick-off refused") as caught:
        _export(_client()).kick_off(REQUEST)
    assert not caught.value.retryable


@responses.activate
def test_kick_off_sends_prefer_async_and_the_types():
    _kick_off_ok()
    _export(_client()).kick_off(REQUEST)
    sent = responses.calls[0].request
    assert sent.headers["Prefer"] == "respond-async"
    assert sent.headers["Accept"] == "application/fhir+json"
    assert "_type=Patient%2CCondition" in sent.url


@responses.activate
def test_a_download_failing_every_retry_fails_the_run(tmp_path: Path):
    _kick_off_ok()
    responses.get(STATUS, json=_manifest())
    for _ in range(3):
        responses.get(FILE, status=503)
    export = _export(_client())
    export.kick_off(REQUEST)
    manifest = export.wait()
    with pytest.raises(BulkDownloadFailed, match="Condition file failed to download") as caught:
        export.download(manifest.output[0], manifest, tmp_path)
    assert caught.value.retryable  # a later run may succeed
    assert len([c for c in responses.calls if c.request.url == FILE]) == 3  # 1 + 2 retries


@responses.activate
def test_a_transfer_broken_midway_is_downloaded_again_from_the_start(tmp_path: Path):
    _kick_off_ok()
    responses.get(STATUS, json=_manifest())
    responses.get(FILE, body=requests.exceptions.ChunkedEncodingError("cut"))
    line = json.dumps({"resourceType": "Condition", "id": "c1"}) + "\n"
    responses.get(FILE, body=line)
    export = _export(_client())
    export.kick_off(REQUEST)
    manifest = export.wait()
    path = export.download(manifest.output[0], manifest, tmp_path)
    assert path.read_text() == line and export.bytes_downloaded == len(line)


@responses.activate
def test_an_interrupt_while_waiting_deletes_the_job():
    _kick_off_ok()
    responses.get(STATUS, status=202, headers={"Retry-After": "30", "X-Progress": "10%"})
    responses.delete(STATUS, status=202)
    export = _export(_client())

    def interrupted(seconds: float) -> None:
        assert seconds == 30.0
        raise KeyboardInterrupt

    export._sleep = interrupted
    export.kick_off(REQUEST)
    with pytest.raises(KeyboardInterrupt):
        try:
            export.wait()
        except KeyboardInterrupt:
            export.cancel()
            raise
    assert [c.request.method for c in responses.calls] == ["GET", "GET", "DELETE"]


@responses.activate
@pytest.mark.security
def test_the_token_goes_to_downloads_only_when_the_manifest_requires_it(tmp_path: Path):
    client = _client(fhir_auth="bearer", fhir_bearer_token="secret-token")
    other = "https://storage.test/signed/Condition.ndjson"
    for requires, url in ((True, FILE), (False, other)):
        responses.reset()
        _kick_off_ok()
        manifest = dict(_manifest(requires), output=[{"type": "Condition", "url": url}])
        responses.get(STATUS, json=manifest)
        responses.get(url, body="")
        export = _export(client)
        export.kick_off(REQUEST)
        parsed = export.wait()
        export.download(parsed.output[0], parsed, tmp_path)
        kick, poll, download = (c.request for c in responses.calls)
        assert kick.headers["Authorization"] == poll.headers["Authorization"] == (
            "Bearer secret-token")
        assert ("Authorization" in download.headers) is requires


@responses.activate
@pytest.mark.security
def test_a_status_url_on_another_host_is_refused():
    responses.get(f"{BASE}/$export", status=202,
                  headers={"Content-Location": "https://elsewhere.test/status"})
    with pytest.raises(Exception, match="not the FHIR server"):
        _export(_client()).kick_off(REQUEST)


@responses.activate
def test_an_error_file_with_an_error_issue_fails_the_run(tmp_path: Path):
    _kick_off_ok()
    manifest = dict(_manifest(), error=[{"type": "OperationOutcome",
                                         "url": f"{BASE}/files/err.ndjson"}])
    responses.get(STATUS, json=manifest)
    responses.get(f"{BASE}/files/err.ndjson", body=json.dumps(
        {"resourceType": "OperationOutcome",
         "issue": [{"severity": "error", "code": "exception", "diagnostics": "lost some"}]}))
    export = _export(_client())
    export.kick_off(REQUEST)
    with pytest.raises(BulkExportRefused, match="could not export"):
        export.check_errors(export.wait(), tmp_path)


def test_the_capability_statement_tells_whether_export_is_offered():
    assert offers_export({"rest": [{"operation": [{"name": "export"}]}]}, None)
    assert offers_export({"rest": [{"resource": [
        {"type": "Group", "operation": [{"name": "export"}]}]}]}, "g1")
    assert not offers_export({"rest": [{"resource": [{"type": "Patient"}]}]}, None)


@responses.activate
@pytest.mark.security
def test_smart_backend_services_token_on_kick_off_polls_and_downloads(tmp_path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = tmp_path / "key.pem"
    key.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    token_url = "http://ehr.test/auth/token"
    client = _client(fhir_auth="smart", smart_client_id="eligibility-backend",
                     smart_private_key_path=str(key), smart_alg="RS384",
                     smart_scope="system/*.rs", smart_token_url=token_url)
    responses.post(token_url, json={"access_token": "smart-1", "token_type": "bearer",
                                    "expires_in": 300})
    _kick_off_ok()
    responses.get(STATUS, status=202, headers={"Retry-After": "1"})
    responses.get(STATUS, json=_manifest(requires_token=True))
    responses.get(FILE, body="")
    export = _export(client)
    export.kick_off(REQUEST)
    manifest = export.wait()
    export.download(manifest.output[0], manifest, tmp_path)
    fhir_calls = [c.request for c in responses.calls if c.request.url != token_url]
    assert len(fhir_calls) == 4  # kick-off, two polls, one download
    assert {r.headers["Authorization"] for r in fhir_calls} == {"Bearer smart-1"}
    assert client.token_request_count == 1
