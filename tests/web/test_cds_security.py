"""CDS Hooks: only asymmetric JWTs are accepted (none, HMAC and unlisted algorithms refused in
every spelling), keys are never fetched from a `jku` off the issuer's origin, and a fhirServer
that is not exactly on the allow-list is never contacted, with whatever URL trick: a counting
proxy in front of the local FHIR server shows that no request left the service.

Wrong `aud`, expired tokens, replayed `jti`, issuers not on the allow-list, alg `none` and
HS256 signed with the public key are in tests/web/test_cds_hooks.py
(test_bad_claims_are_refused, test_replayed_jti_is_refused, test_alg_none_is_refused,
test_hmac_is_refused_even_with_the_public_key_as_secret)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from service.core.settings import Settings

pytestmark = pytest.mark.security

PUBLIC = "https://elig.example.org"
AUD = f"{PUBLIC}/cds-services/trial-eligibility"
ISSUER = "https://ehr.example.org"
ACCESS_TOKEN = "ehr-access-token-never-to-leave-0123"


@pytest.fixture(scope="module")
def key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks(key: Any, tmp_path: Path) -> Path:
    public = json.loads(jwt.get_algorithm_by_name("RS384").to_jwk(key.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**public, "kid": "k1", "alg": "RS384"}]}))
    return path


def make_token(key: Any, *, headers: dict[str, Any] | None = None, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUD, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex,
            **claims}
    return jwt.encode(body, key, algorithm="RS384", headers={"kid": "k1", **(headers or {})})


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged(alg: str | None) -> str:
    """A token whose header claims `alg` (absent when None), with a made-up signature."""
    now = int(time.time())
    header = {"typ": "JWT", "kid": "k1"} | ({} if alg is None else {"alg": alg})
    claims = {"iss": ISSUER, "aud": AUD, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
    return f"{_b64(header)}.{_b64(claims)}.{_b64({'sig': 'x'})}"


@pytest.fixture
def make_cds_app(make_app, proxy, jwks: Path, tmp_path: Path) -> Iterator[Any]:
    """make_cds_app(**overrides) -> an app trusting the test issuer, reading through the proxy."""

    def _make(**overrides: Any) -> Any:
        settings = Settings().with_overrides(**{
            "queue_url": f"sqlite:///{tmp_path / 'q.sqlite'}", "public_url": PUBLIC,
            "cds_issuers": (f"{ISSUER}|{jwks}",),
            "cds_allowed_fhir_servers": (proxy.base_url,), **overrides})
        app, _ = make_app(settings)
        return app

    yield _make


def hook(pid: str, server: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"hook": "patient-view", "hookInstance": uuid.uuid4().hex,
                            "context": {"userId": "Practitioner/1", "patientId": pid}}
    if server is not None:
        body["fhirServer"] = server
        body["fhirAuthorization"] = {"access_token": ACCESS_TOKEN, "token_type": "Bearer",
                                     "expires_in": 300, "scope": "patient/*.read",
                                     "subject": "cds"}
    return body


def post(app: Any, body: dict[str, Any], token: str) -> Any:
    return app.test_client().post("/cds-services/trial-eligibility", json=body,
                                  headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", None, "", "HS256", "HS384",
                                 "HS512", "hs256", "RS512", "PS256", "ES512", "EdDSA"])
def test_only_the_allowed_asymmetric_algorithms_are_accepted(make_cds_app, proxy, key, alg):
    app = make_cds_app()
    response = post(app, hook("p1", proxy.base_url), forged(alg))
    assert response.status_code == 401
    assert "is not allowed" in response.get_json()["detail"]
    assert proxy.requests() == []


def test_a_token_without_exp_or_jti_is_refused(make_cds_app, proxy, key):
    app = make_cds_app()
    for missing in ("exp", "jti", "iat"):
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUD, "iat": now, "exp": now + 300,
                  "jti": uuid.uuid4().hex}
        del claims[missing]
        token = jwt.encode(claims, key, algorithm="RS384", headers={"kid": "k1"})
        response = post(app, hook("p1", proxy.base_url), token)
        assert response.status_code == 401
        assert missing in response.get_json()["detail"]
    assert proxy.requests() == []


def test_keys_are_never_fetched_from_a_jku_off_the_issuers_origin(make_cds_app, proxy, key):
    # The issuer names no keys, so only a jku on its own origin may be used. A jku pointing
    # anywhere else (here: a loopback server that counts requests) is never fetched.
    app = make_cds_app(cds_issuers=(ISSUER,))
    for jku in (f"{proxy.base_url}/keys.json", f"http://127.0.0.1:{proxy.port}/",
                "http://ehr.example.org/keys.json", "https://ehr.example.org.evil/keys.json"):
        token = make_token(key, headers={"jku": jku})
        response = post(app, hook("p1", None), token)
        assert response.status_code == 401
        assert "jku" in response.get_json()["detail"]
    assert proxy.requests() == []


def allow_list_tricks(base: str, port: int) -> list[str]:
    return [
        base + "x", base + "/../fhir", base + "/Patient", base + "?x=1", base + "#x",
        base.replace("127.0.0.1", "localhost"), base.replace("127.0.0.1", "127.1"),
        base.replace("http://", "http://user@"), base.replace("http://", "https://"),
        base.replace("/fhir", "/FHIR"), base + "%2F..", f"http://127.0.0.1:{port + 1}/fhir",
        " " + base, base + "\n", "file:///etc/passwd", "",
    ]


def test_a_fhir_server_off_the_allow_list_is_never_contacted(make_cds_app, proxy, key):
    app = make_cds_app()
    for server in allow_list_tricks(proxy.base_url, proxy.port):
        response = post(app, hook("p1", server), make_token(key))
        assert response.status_code == 412, (server, response.get_data(as_text=True))
        assert ACCESS_TOKEN not in response.get_data(as_text=True)
    assert proxy.requests() == []


def test_the_allow_listed_fhir_server_is_read(make_cds_app, proxy, population, key):
    # The control: the same proxy, named exactly, is read and the hook answers with cards.
    [pid] = population.add(1)
    app = make_cds_app()
    response = post(app, hook(pid, proxy.base_url), make_token(key))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "cards" in response.get_json()
    assert proxy.requests() and all(s.method == "GET" for s in proxy.requests())
