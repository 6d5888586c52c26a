"""SMART Backend Services against a real authorization server (npm oidc-provider on loopback).

The FHIR server is the local one behind a resource server that checks every bearer token
against the provider's keys (tests/support/smart_resource_server.py). The client discovers the
token endpoint, authenticates with private_key_jwt (RS384 and ES384), caches the token, renews
it before expiry and after a 401, and every FHIR request carries it.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.fhir.client import FhirClient
from service.fhir.errors import FhirAuthError
from tests.support.oidc_provider import OidcProviderUnavailable, start_oidc_provider
from tests.support.smart_resource_server import SmartResourceServer

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

pytestmark = [pytest.mark.integration, pytest.mark.security]

SCOPE = "system/*.rs system/ResearchSubject.cu system/ResearchStudy.cu"
FORBIDDEN_SCOPE = "system/Patient.cud"
TOKEN_SECONDS = 120  # provider's access-token lifetime; the client renews 60 s before its end


class OffsetClock:
    """Real time plus a settable offset: the provider checks assertions against its own clock."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _key_and_jwk(alg: str, kid: str) -> tuple[bytes, dict]:
    if alg == "RS384":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    else:
        key = ec.generate_private_key(ec.SECP384R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, {**jwk, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture(scope="module")
def smart_world(fhir_server, tmp_path_factory):
    """One provider knowing an RS384 and an ES384 backend client, and the guarded FHIR server."""
    guarded = SmartResourceServer(fhir_server.base_url).start()
    folder = tmp_path_factory.mktemp("smart")
    clients, metadata = {}, []
    for alg in ("RS384", "ES384"):
        pem, jwk = _key_and_jwk(alg, kid=f"kid-{alg}")
        key_path = folder / f"backend-{alg}.pem"
        key_path.write_bytes(pem)
        client_id = f"eligibility-{alg.lower()}-{uuid.uuid4().hex[:8]}"
        clients[alg] = (client_id, key_path, jwk["kid"])
        metadata.append({
            "client_id": client_id,
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": alg,
            "jwks": {"keys": [jwk]},
            "grant_types": ["client_credentials"],
            "response_types": [],
            "redirect_uris": [],
            "scope": SCOPE,
        })
    try:
        provider = start_oidc_provider({
            "clients": metadata,
            # Known to the provider but not granted to these clients.
            "scopes": [FORBIDDEN_SCOPE],
            "resourceServers": {
                guarded.base_url: {"scope": SCOPE, "accessTokenTTL": TOKEN_SECONDS}},
        })
    except OidcProviderUnavailable as exc:
        guarded.stop()
        if IN_CI:
            pytest.fail(f"CI must run the OpenID provider tests but: {exc}", pytrace=False)
        pytest.skip(str(exc))
    guarded.trust(provider.issuer, provider.token_endpoint, provider.jwks_uri)
    yield guarded, clients
    provider.stop()
    guarded.stop()


@pytest.fixture(params=["RS384", "ES384"])
def smart_setup(request, smart_world, fhir_settings, tmp_path):
    """Settings of one backend client (by signing algorithm) and the guarded server, reset."""
    guarded, clients = smart_world
    client_id, key_path, kid = clients[request.param]
    guarded.reset()
    settings = fhir_settings.with_overrides(
        fhir_base_url=guarded.base_url,
        fhir_auth="smart",
        smart_client_id=client_id,
        smart_private_key_path=str(key_path),
        smart_key_id=kid,
        smart_alg=request.param,
        smart_scope=SCOPE,
    )
    return settings, guarded, tmp_path


def _patient(client: FhirClient) -> str:
    patient_id = f"smart-{uuid.uuid4().hex[:12]}"
    client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {"resourceType": "Patient", "id": patient_id, "gender": "female"},
        "request": {"method": "PUT", "url": f"Patient/{patient_id}"}}]})
    return patient_id


def test_token_from_the_provider_is_sent_cached_and_renewed_before_expiry(smart_setup):
    settings, guarded, _ = smart_setup
    clock = OffsetClock()
    with FhirClient(settings, clock=clock) as client:
        patient_id = _patient(client)
        for _ in range(5):
            assert client.read("Patient", patient_id)["id"] == patient_id
        client.search("Patient", {"_id": patient_id})
        # Discovery, one token, and every FHIR request carried it.
        assert client.token_request_count == 1
        assert guarded.distinct_tokens() == 1
        assert len(guarded.accepted) == client.request_count - 1  # all but discovery
        claims = guarded.accepted[0]
        assert claims["client_id"] == settings.smart_client_id
        assert set(claims["scope"].split()) == set(SCOPE.split())
        assert claims["exp"] - claims["iat"] == TOKEN_SECONDS

        clock.offset = TOKEN_SECONDS / 2 + 1  # past the client's renewal moment
        client.read("Patient", patient_id)
        assert client.token_request_count == 2
        assert guarded.distinct_tokens() == 2
        assert guarded.accepted[-1]["_token"] != guarded.accepted[0]["_token"]
    assert guarded.refused == []


def test_a_token_the_server_stops_accepting_is_renewed_once(smart_setup):
    settings, guarded, _ = smart_setup
    with FhirClient(settings) as client:
        patient_id = _patient(client)
        first = guarded.accepted[-1]["_token"]
        guarded.revoke(first)  # the resource server refuses it from now on (401)
        assert client.read("Patient", patient_id)["id"] == patient_id
        assert client.token_request_count == 2
        assert guarded.accepted[-1]["_token"] != first
        assert guarded.refused == ["token revoked"]


def test_an_assertion_signed_by_an_unregistered_key_gets_no_token(smart_setup):
    settings, guarded, tmp_path = smart_setup
    pem, _ = _key_and_jwk(settings.smart_alg, kid=settings.smart_key_id or "")
    other = tmp_path / "other.pem"
    other.write_bytes(pem)
    with FhirClient(settings.with_overrides(smart_private_key_path=str(other))) as client, \
            pytest.raises(FhirAuthError) as caught:
        client.read("Patient", "anyone")
    assert "invalid_client" in str(caught.value)
    assert guarded.accepted == [] and guarded.refused == []  # no FHIR request went out


def test_a_scope_the_client_may_not_have_is_refused(smart_setup):
    settings, guarded, _ = smart_setup
    wider = settings.with_overrides(smart_scope=f"{SCOPE} {FORBIDDEN_SCOPE}")
    with FhirClient(wider) as client, pytest.raises(FhirAuthError) as caught:
        client.read("Patient", "anyone")
    assert "invalid_scope" in str(caught.value)
    assert guarded.accepted == []


def test_requests_without_a_token_are_refused_by_the_resource_server(smart_setup):
    settings, guarded, _ = smart_setup
    with FhirClient(settings.with_overrides(fhir_auth="none")) as client, \
            pytest.raises(FhirAuthError):
        client.read("Patient", "anyone")
    assert guarded.refused == ["no bearer token"]


def test_the_same_provider_signs_a_person_in_with_code_and_pkce(oidc_provider):
    """The harness serves browser sign-in too (coordinator pages): a configured account logs in
    through the provider's login form; an unknown one cannot."""
    import base64
    import hashlib
    import re
    from urllib.parse import parse_qs, urljoin, urlsplit

    import requests

    redirect = "http://127.0.0.1:9/callback"  # never contacted: the code is read off the URL
    provider = oidc_provider({  # the fixture: skipped without Node, stopped after the test
        "clients": [{"client_id": "pages", "client_secret": "pages-secret",
                     "redirect_uris": [redirect], "grant_types": ["authorization_code"],
                     "response_types": ["code"], "scope": "openid profile"}],
        "accounts": {"coordinator-1": {"claims": {"name": "Coordinator One"}}},
        "claims": {"openid": ["sub"], "profile": ["name"]},
    })
    def sign_in(login: str) -> requests.Response:
        verifier = "v" * 50
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        browser = requests.Session()
        answer = browser.get(provider.discovery["authorization_endpoint"], params={
            "client_id": "pages", "redirect_uri": redirect, "response_type": "code",
            "scope": "openid profile", "code_challenge": challenge,
            "code_challenge_method": "S256", "state": "s-1"}, allow_redirects=False)
        for _ in range(8):  # login form, consent form, back to the callback
            location = answer.headers.get("location")
            if location:
                if location.startswith(redirect):
                    code = parse_qs(urlsplit(location).query)["code"][0]
                    return requests.post(provider.token_endpoint, data={
                        "grant_type": "authorization_code", "code": code,
                        "redirect_uri": redirect, "code_verifier": verifier},
                        auth=("pages", "pages-secret"), timeout=10)
                answer = browser.get(urljoin(answer.url, location), allow_redirects=False)
                continue
            form = re.search(r'action="([^"]+)"', answer.text)
            if form is None:  # an error page: no sign-in
                return answer
            action = form.group(1)
            prompt = re.search(r'name="prompt" value="([^"]+)"', answer.text).group(1)
            answer = browser.post(urljoin(answer.url, action), allow_redirects=False,
                                  data={"prompt": prompt, "login": login, "password": "x"})
        return answer

    tokens = sign_in("coordinator-1").json()
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["sub"] == "coordinator-1" and claims["aud"] == "pages"
    assert claims["iss"] == provider.issuer
    refused = sign_in("stranger")
    # An account the config does not name gets an error page, never a code or a token.
    assert refused.status_code >= 400 and "error" in refused.json()
