"""Secrets stay where they belong: never in a settings repr, never inside a URL setting (where
/readyz, error messages and logs would show them), the Redis password never in the worker's
banner, and the FHIR credentials sent to the FHIR server's origin only."""

from __future__ import annotations

from dataclasses import fields

import pytest
import responses

from service.cli.main import _queue_label
from service.core.settings import Settings, SettingsError
from service.fhir.client import FhirClient
from service.fhir.errors import FhirProtocolError

pytestmark = pytest.mark.security

SECRET = "s3cr3t-value-0123456789"


def test_no_secret_is_in_the_settings_repr():
    settings = Settings().with_overrides(
        api_tokens=(SECRET + "a",), webhook_secret=SECRET + "b", notify_secret=SECRET + "c",
        fhir_auth="bearer", fhir_bearer_token=SECRET + "d")
    assert SECRET not in repr(settings)
    hidden = {f.name for f in fields(Settings) if not f.repr}
    assert {"api_tokens", "webhook_secret", "notify_secret", "fhir_bearer_token"} <= hidden


@pytest.mark.parametrize("name", ["FHIR_BASE_URL", "PUBLIC_URL", "CDS_ALLOWED_FHIR_SERVERS"])
def test_credentials_inside_a_url_setting_are_refused_without_echoing_them(name):
    env = {name: f"https://user:{SECRET}@fhir.example.org/fhir"}
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert name in str(refused.value)
    assert SECRET not in str(refused.value)


def test_credentials_in_the_fhir_base_url_are_refused_however_the_settings_are_made():
    with pytest.raises(SettingsError) as refused:
        Settings().with_overrides(fhir_base_url=f"https://user:{SECRET}@fhir.example.org/fhir")
    assert SECRET not in str(refused.value)


def test_the_worker_banner_hides_the_redis_password():
    settings = Settings().with_overrides(queue_url=f"redis://:{SECRET}@redis.example:6379/0")
    assert SECRET not in _queue_label(settings)
    assert "redis.example:6379" in _queue_label(settings)


def test_fhir_credentials_go_to_the_fhir_server_only():
    # A next link to another host is refused before anything is sent there.
    base = "https://fhir.example.org/fhir"
    settings = Settings().with_overrides(fhir_base_url=base, fhir_auth="bearer",
                                         fhir_bearer_token=SECRET)
    page = {"resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": "next", "url": "https://elsewhere.example/fhir/Patient?p=2"}],
            "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}]}
    with responses.RequestsMock() as mock, FhirClient(settings) as client:
        mock.get(f"{base}/Patient", json=page)
        with pytest.raises(FhirProtocolError):
            list(client.search("Patient", {}))
        assert [c.request.url.split("?")[0] for c in mock.calls] == [f"{base}/Patient"]
        assert mock.calls[0].request.headers["Authorization"] == f"Bearer {SECRET}"
