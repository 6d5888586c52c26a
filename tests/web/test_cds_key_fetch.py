"""CDS Hooks keys (issue 13, finding 1): a key set is never read through a redirect, and no key
is fetched before the checks that need none (alg, issuer allow-list, aud, exp, iat, lifetime).

The issuer is a real HTTP server on loopback that counts every request: its `/keys` answers a
302 to `/evil-keys`, which serves the attacker's key set. The issuer's entry in CDS_ISSUERS
names no keys, so the token's `jku` on the issuer's origin is the key source, as in the attack.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from service.core.settings import Settings
from service.web.cds_auth import MAX_LIFETIME_SECONDS, CdsAuthError, CdsJwtVerifier

pytestmark = pytest.mark.security

PUBLIC = "https://elig.example.org"
AUD = f"{PUBLIC}/cds-services/trial-eligibility"


def _jwks(key: Any) -> dict[str, Any]:
    public = json.loads(jwt.get_algorithm_by_name("RS384").to_jwk(key.public_key()))
    return {"keys": [{**public, "kid": "k1", "alg": "RS384"}]}


class KeyServer:
    """The issuer's web site: /good-keys (its real keys), /keys (an open redirect)."""

    def __init__(self, good: dict[str, Any], evil: dict[str, Any]) -> None:
        self.paths: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                owner.paths.append(self.path)
                if self.path == "/keys":
                    self.send_response(302)
                    self.send_header("Location", "/evil-keys")
                    self.end_headers()
                    return
                body = json.dumps(good if self.path == "/good-keys" else evil).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def keys() -> tuple[Any, Any]:
    make = lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)  # noqa: E731
    return make(), make()


@pytest.fixture
def site(keys: tuple[Any, Any]) -> Iterator[KeyServer]:
    real, attacker = keys
    server = KeyServer(_jwks(real), _jwks(attacker))
    yield server
    server.close()


def verifier(issuer: str) -> CdsJwtVerifier:
    settings = Settings().with_overrides(public_url=PUBLIC, cds_issuers=(issuer,))
    seen: set[str] = set()

    def once(key: str, ttl: float) -> bool:
        if key in seen:
            return False
        seen.add(key)
        return True

    return CdsJwtVerifier(settings, seen=once)


def token(key: Any, issuer: str, jku: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": issuer, "aud": AUD, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex,
            **claims}
    return jwt.encode(body, key, algorithm="RS384", headers={"kid": "k1", "jku": jku})


def test_a_key_set_behind_a_redirect_is_never_used(site, keys):
    # The attack: an open redirect on the issuer's site leads to the attacker's key set.
    _, attacker = keys
    forged = token(attacker, site.origin, f"{site.origin}/keys")
    with pytest.raises(CdsAuthError, match="redirects"):
        verifier(site.origin).verify(f"Bearer {forged}")
    assert site.paths == ["/keys"]  # the redirect was not followed


def test_the_issuers_own_key_set_still_works(site, keys):
    # The control: the same issuer, its real keys at a URL that answers directly.
    real, _ = keys
    good = token(real, site.origin, site.origin + "/good-keys")
    claims = verifier(site.origin).verify(f"Bearer {good}")
    assert claims["iss"] == site.origin
    assert site.paths == ["/good-keys"]


def _bad_tokens(key: Any, issuer: str, jku: str) -> dict[str, str]:
    now = int(time.time())
    return {
        "expired": token(key, issuer, jku, iat=now - 400, exp=now - 100),
        "wrong aud": token(key, issuer, jku, aud="https://other.example/cds"),
        "exp 1 h after iat": token(key, issuer, jku, exp=now + 3600),
        "iat a day ago": token(key, issuer, jku, iat=now - 86400, exp=now + 60),
        "iat in the future": token(key, issuer, jku, iat=now + 3600, exp=now + 3700),
        "issuer not listed": token(key, "http://127.0.0.1:1", jku),
        "no jti": jwt.encode({"iss": issuer, "aud": AUD, "iat": now, "exp": now + 60}, key,
                             algorithm="RS384", headers={"kid": "k1", "jku": jku}),
    }


@pytest.mark.parametrize("case", ["expired", "wrong aud", "exp 1 h after iat", "iat a day ago",
                                  "iat in the future", "issuer not listed", "no jti"])
def test_no_key_is_fetched_before_the_checks_that_need_none(site, keys, case):
    # An unauthenticated caller cannot make the service fetch any URL: every claim check that
    # needs no key fails first. (Signed with the real key, so only the claim is wrong.)
    real, _ = keys
    bad = _bad_tokens(real, site.origin, site.origin + "/good-keys")[case]
    with pytest.raises(CdsAuthError):
        verifier(site.origin).verify(f"Bearer {bad}")
    assert site.paths == []


def test_a_lifetime_over_five_minutes_is_refused_even_when_signed(site, keys):
    real, _ = keys
    now = int(time.time())
    long_lived = token(real, site.origin, site.origin + "/good-keys",
                       iat=now, exp=now + MAX_LIFETIME_SECONDS + 1)
    with pytest.raises(CdsAuthError, match="longer than 300 s"):
        verifier(site.origin).verify(f"Bearer {long_lived}")
    just_right = token(real, site.origin, site.origin + "/good-keys",
                       iat=now, exp=now + MAX_LIFETIME_SECONDS)
    assert verifier(site.origin).verify(f"Bearer {just_right}")["exp"] == now + 300
