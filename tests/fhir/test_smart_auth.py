"""SMART Backend Services: discovery, a real signed client assertion, token cache and refresh."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.fhir import smart_auth
from service.fhir.errors import FhirAuthError
from tests.support.fhir_testkit import BASE, hapi

TOKEN_URL = "http://hapi.test/auth/token"
CLIENT_ID = "eligibility-backend"
FHIR_JSON = "application/fhir+json"


def _write_key(tmp_path, alg: str):
    if alg == "RS384":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP384R1())
    path = tmp_path / f"key-{alg}.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, key.public_key()


@pytest.fixture(params=["RS384", "ES384"])
def smart(request, tmp_path, settings):
    alg = request.param
    path, public_key = _write_key(tmp_path, alg)
    smart_settings = replace(
        settings,
        fhir_auth="smart",
        smart_client_id=CLIENT_ID,
        smart_private_key_path=str(path),
        smart_key_id="kid-1",
        smart_alg=alg,
        smart_scope="system/*.rs system/ResearchSubject.cu",
    )
    return smart_settings, public_key


def _token_answer(token: str, expires_in: int = 300) -> dict:
    return {
        "status": 200,
        "json": {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": expires_in,
            "scope": "system/*.rs",
        },
    }


def _assertions() -> list[str]:
    """Client assertions of every token request seen so far."""
    out = []
    for call in responses.calls:
        if call.request.url == TOKEN_URL:
            form = parse_qs(call.request.body)
            out.append(form["client_assertion"][0])
    return out


def _metadata():
    responses.get(
        f"{BASE}/metadata", status=200, json=hapi("metadata.json"), content_type=FHIR_JSON
    )


@responses.activate
def test_discovery_then_a_verifiable_signed_assertion_then_bearer(smart, make_client, clock):
    settings, public_key = smart
    responses.get(f"{BASE}/.well-known/smart-configuration", json=hapi("smart-configuration.json"))
    responses.post(TOKEN_URL, **_token_answer("access-1"))
    _metadata()
    client, _ = make_client(settings)

    client.capabilities()

    token_call = next(c for c in responses.calls if c.request.url == TOKEN_URL)
    assert token_call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(token_call.request.body)
    assert form["grant_type"] == ["client_credentials"]
    assert form["scope"] == [settings.smart_scope]
    assert form["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ]
    assertion = form["client_assertion"][0]
    header = jwt.get_unverified_header(assertion)
    assert (
        header["alg"] == settings.smart_alg and header["kid"] == "kid-1" and header["typ"] == "JWT"
    )
    claims = jwt.decode(
        assertion,
        public_key,
        algorithms=[settings.smart_alg],
        audience=TOKEN_URL,
        # the fake clock is in the future; exp and iat are checked against it below
        options={
            "verify_exp": False,
            "verify_iat": False,
            "require": ["iss", "sub", "aud", "exp", "jti"],
        },
    )
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == TOKEN_URL
    assert claims["iat"] == int(clock.now)
    assert 0 < claims["exp"] - clock.now <= 300
    assert claims["jti"]
    fhir_call = responses.calls[-1].request
    assert fhir_call.url == f"{BASE}/metadata"
    assert fhir_call.headers["Authorization"] == "Bearer access-1"
    # discovery and metadata count as FHIR requests, the token request does not
    assert client.request_count == 2 and client.token_request_count == 1


@responses.activate
def test_signature_by_another_key_does_not_verify(smart, make_client, tmp_path):
    settings, _ = smart
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    _, other_public = _write_key(other_dir, settings.smart_alg)
    settings = replace(settings, smart_token_url=TOKEN_URL)
    responses.post(TOKEN_URL, **_token_answer("access-1"))
    _metadata()
    client, _ = make_client(settings)
    client.capabilities()
    (assertion,) = _assertions()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            assertion,
            other_public,
            algorithms=[settings.smart_alg],
            audience=TOKEN_URL,
            options={"verify_exp": False, "verify_iat": False},
        )


@responses.activate
def test_token_is_cached_until_shortly_before_expiry(smart, make_client, clock):
    settings, _ = smart
    settings = replace(settings, smart_token_url=TOKEN_URL)
    responses.post(TOKEN_URL, **_token_answer("access-1", expires_in=300))
    responses.post(TOKEN_URL, **_token_answer("access-2", expires_in=300))
    _metadata()
    client, _ = make_client(settings)

    client.capabilities()
    clock.now += 200  # still well inside the token's life
    client.capabilities()
    assert client.token_request_count == 1
    clock.now += 50  # 250 s: within the refresh margin before expiry at 300 s
    client.capabilities()

    assert client.token_request_count == 2
    auth = [
        c.request.headers.get("Authorization")
        for c in responses.calls
        if c.request.url.endswith("/metadata")
    ]
    assert auth == ["Bearer access-1", "Bearer access-1", "Bearer access-2"]
    first, second = _assertions()
    assert (
        jwt.decode(first, options={"verify_signature": False})["jti"]
        != jwt.decode(second, options={"verify_signature": False})["jti"]
    )


@responses.activate
def test_401_refreshes_the_token_once_and_retries(smart, make_client):
    settings, _ = smart
    settings = replace(settings, smart_token_url=TOKEN_URL)
    responses.post(TOKEN_URL, **_token_answer("revoked"))
    responses.post(TOKEN_URL, **_token_answer("fresh"))
    responses.get(f"{BASE}/metadata", status=401, json={"resourceType": "OperationOutcome"})
    _metadata()
    client, _ = make_client(settings)

    assert client.capabilities()["resourceType"] == "CapabilityStatement"

    auth = [
        c.request.headers.get("Authorization")
        for c in responses.calls
        if c.request.url.endswith("/metadata")
    ]
    assert auth == ["Bearer revoked", "Bearer fresh"]
    assert client.token_request_count == 2


@responses.activate
def test_a_second_401_is_an_auth_error_not_a_loop(smart, make_client, sleeps):
    settings, _ = smart
    settings = replace(settings, smart_token_url=TOKEN_URL)
    responses.post(TOKEN_URL, **_token_answer("t1"))
    responses.post(TOKEN_URL, **_token_answer("t2"))
    responses.get(f"{BASE}/metadata", status=401, json={"resourceType": "OperationOutcome"})
    responses.get(f"{BASE}/metadata", status=401, json={"resourceType": "OperationOutcome"})
    client, _ = make_client(settings)

    with pytest.raises(FhirAuthError):
        client.capabilities()
    assert client.request_count == 2 and client.token_request_count == 2 and sleeps == []


@responses.activate
def test_token_endpoint_refusal_is_an_auth_error_without_the_assertion(smart, make_client, caplog):
    settings, _ = smart
    settings = replace(settings, smart_token_url=TOKEN_URL)
    responses.post(
        TOKEN_URL,
        status=400,
        json={"error": "invalid_client", "error_description": "unknown key id"},
    )
    client, _ = make_client(settings)
    with caplog.at_level(logging.DEBUG), pytest.raises(FhirAuthError) as caught:
        client.capabilities()
    (assertion,) = _assertions()
    assert "invalid_client: unknown key id" in str(caught.value)
    assert assertion not in str(caught.value) and assertion not in caplog.text
    assert client.request_count == 0


@responses.activate
def test_token_endpoint_5xx_is_retried_with_a_new_assertion(smart, make_client, sleeps):
    settings, _ = smart
    settings = replace(settings, smart_token_url=TOKEN_URL)
    responses.post(TOKEN_URL, status=503, body="")
    responses.post(TOKEN_URL, **_token_answer("ok"))
    _metadata()
    client, _ = make_client(settings)
    client.capabilities()
    first, second = _assertions()
    assert first != second  # a replayed jti would be refused
    assert len(sleeps) == 1


@responses.activate
def test_secrets_never_reach_the_log(smart, make_client, caplog):
    settings, _ = smart
    responses.get(f"{BASE}/.well-known/smart-configuration", json=hapi("smart-configuration.json"))
    responses.post(TOKEN_URL, **_token_answer("very-secret-access-token"))
    _metadata()
    client, _ = make_client(settings)
    with caplog.at_level(logging.DEBUG):
        client.capabilities()
    (assertion,) = _assertions()
    assert "SMART access token obtained" in caplog.text
    assert "very-secret-access-token" not in caplog.text
    assert assertion not in caplog.text
    assert "very-secret-access-token" not in repr(client.__dict__.get("_token"))


@responses.activate
def test_discovery_without_private_key_jwt_is_refused(smart, make_client):
    settings, _ = smart
    config = hapi("smart-configuration.json")
    config["token_endpoint_auth_methods_supported"] = ["client_secret_basic"]
    responses.get(f"{BASE}/.well-known/smart-configuration", json=config)
    client, _ = make_client(settings)
    with pytest.raises(FhirAuthError) as caught:
        client.capabilities()
    assert "private_key_jwt" in str(caught.value)


def test_a_key_that_does_not_fit_the_algorithm_fails_at_construction(
    tmp_path, settings, make_client
):
    rsa_path, _ = _write_key(tmp_path, "RS384")
    bad = replace(
        settings,
        fhir_auth="smart",
        smart_client_id=CLIENT_ID,
        smart_private_key_path=str(rsa_path),
        smart_alg="ES384",
    )
    with pytest.raises(FhirAuthError) as caught:
        make_client(bad)
    assert "P-384" in str(caught.value)


def test_a_file_that_is_not_a_key_is_refused(tmp_path):
    path = tmp_path / "key.pem"
    path.write_text("-----BEGIN NOTHING-----\n")
    with pytest.raises(smart_auth.SmartAuthError):
        smart_auth.load_private_key(path, "RS384")


def test_token_response_without_access_token_or_with_wrong_type():
    with pytest.raises(smart_auth.SmartAuthError):
        smart_auth.parse_token_response({"token_type": "bearer"}, 0)
    with pytest.raises(smart_auth.SmartAuthError):
        smart_auth.parse_token_response({"access_token": "x", "token_type": "mac"}, 0)
    token = smart_auth.parse_token_response({"access_token": "x", "expires_in": 30}, 100)
    assert token.usable(110) and not token.usable(
        116
    )  # short tokens keep half their life as margin
    assert "x" not in repr(token).replace("expires", "")


def test_assertion_claims_are_built_from_the_given_clock(tmp_path):
    path, public_key = _write_key(tmp_path, "ES384")
    key = smart_auth.load_private_key(path, "ES384")
    assertion = smart_auth.client_assertion(
        client_id="c", token_url=TOKEN_URL, key=key, alg="ES384", kid=None, now=1000.0, jti="j-1"
    )
    claims = jwt.decode(
        assertion,
        public_key,
        algorithms=["ES384"],
        audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "iss": "c",
        "sub": "c",
        "aud": TOKEN_URL,
        "iat": 1000,
        "exp": 1300,
        "jti": "j-1",
    }
    assert "kid" not in jwt.get_unverified_header(assertion)
    assert json.loads(json.dumps(claims))  # plain JSON claims
