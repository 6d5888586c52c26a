"""Issue 22, finding 6: the open API (loopback, no API token, as `./dev start` runs it) from
another website. A page anywhere can make the browser POST a form or text/plain body to
127.0.0.1 without asking (no CORS preflight), and DNS rebinding points its own host name at
the loopback port to read the answers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from service.core.settings import Settings

pytestmark = pytest.mark.security
BASE = "http://fhir.hospital.example/fhir"
BODY = json.dumps({"patients": ["p-cross-site"]}).encode()


def _app(make_app: Any, tmp_path: Path, **overrides: Any) -> Any:
    settings = Settings().with_overrides(
        fhir_base_url=BASE, queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
        users_db=tmp_path / "users.sqlite", cds_jwt_required=False, coalesce_seconds=60.0,
        public_url="http://trials.hospital.example:8000", **overrides,
    )
    made, _ = make_app(settings)
    return made


def queued(app: Any) -> list[str]:
    store = app.extensions["eligibility"].queue.store
    return [store.get_task(t).patient for t in store.queued_due(time.time() + 3600)]


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None,
])
def test_a_json_body_without_a_json_content_type_is_415_and_starts_nothing(
    make_app, tmp_path, content_type
):
    app = _app(make_app, tmp_path)
    http = app.test_client()
    headers = {"Content-Type": content_type} if content_type else {}
    for path in ("/screenings", "/cds-services/trial-eligibility"):
        answer = http.post(path, data=BODY, headers=headers)
        assert answer.status_code == 415, (path, content_type)
        assert answer.headers["Content-Type"] == "application/problem+json"
    assert queued(app) == []


def test_json_content_types_are_still_read(make_app, tmp_path):
    app = _app(make_app, tmp_path)
    http = app.test_client()
    for kind in ("application/json", "application/json; charset=utf-8"):
        answer = http.post("/screenings", data=BODY, headers={"Content-Type": kind})
        assert answer.status_code == 202, kind
    assert set(queued(app)) == {"p-cross-site"}


@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil.example",
    "trials.hospital.example.evil.example",
])
def test_without_a_token_only_our_host_names_are_answered(make_app, tmp_path, host):
    app = _app(make_app, tmp_path)
    http = app.test_client()
    for method, path in (("GET", "/studies"), ("GET", "/patients/p1/eligibility"),
                         ("POST", "/screenings"), ("GET", "/"), ("GET", "/healthz")):
        answer = http.open(path, method=method, data=BODY, headers={
            "Host": host, "Content-Type": "application/json"})
        assert answer.status_code == 421, (host, path)
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert b"p1" not in answer.data
    assert queued(app) == []


@pytest.mark.parametrize("host", [
    "localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000",
    "trials.hospital.example:8000", "TRIALS.hospital.example",
])
def test_our_own_host_names_are_answered(make_app, tmp_path, host):
    http = _app(make_app, tmp_path).test_client()
    answer = http.get("/studies", headers={"Host": host})
    assert answer.status_code == 200, host


def test_with_an_api_token_any_host_name_is_answered(make_app, tmp_path):
    token = "an-api-token-0123456789abcdef-xsite"
    http = _app(make_app, tmp_path, api_tokens=(token,)).test_client()
    answer = http.get("/studies", headers={"Host": "proxy.internal.example",
                                           "Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
