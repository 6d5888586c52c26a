"""Verify the CDS Hooks client's JWT: allow-listed issuer, asymmetric alg, aud, exp, fresh jti.

Issuers come from CDS_ISSUERS entries `issuer|keys`, where keys is a JWKS URL (fetched and
cached here; it is the EHR's key server, not the FHIR server) or a local JWKS/PEM file. An
entry with the issuer alone trusts the token's `jku` header only when it is a URL on the
issuer's own origin.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jwt
import requests

from service.settings import Settings

log = logging.getLogger(__name__)

ALLOWED_ALGS = ("RS384", "ES384", "RS256", "ES256")
_KEY_TYPE = {"RS": "RSA", "ES": "EC"}
JWKS_TTL_SECONDS = 300.0
JWKS_REFRESH_MIN_SECONDS = 30.0  # an unknown kid refetches at most this often
LEEWAY_SECONDS = 30


class CdsAuthError(Exception):
    """The JWT is missing or not acceptable; the message says why (never echoes the token)."""


class JwksFetcher:
    """Fetch and cache JSON Web Key Sets by URL (small, thread-safe, with a TTL)."""

    def __init__(self, session: requests.Session | None = None, timeout: float = 3.0) -> None:
        self._session = session or requests.Session()
        self._timeout = timeout
        self._cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def keys(self, url: str, *, refresh: bool = False) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(url)
        if cached and not refresh and now - cached[0] < JWKS_TTL_SECONDS:
            return cached[1]
        if cached and refresh and now - cached[0] < JWKS_REFRESH_MIN_SECONDS:
            return cached[1]
        try:
            response = self._session.get(url, timeout=self._timeout,
                                         headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = response.json().get("keys")
        except (requests.RequestException, ValueError, AttributeError) as exc:
            if cached:
                return cached[1]  # keep verifying with the last good set
            raise CdsAuthError(f"cannot fetch the issuer's JWKS from {url}") from exc
        if not isinstance(keys, list):
            raise CdsAuthError(f"{url} is not a JWKS (no 'keys' list)")
        with self._lock:
            self._cache[url] = (now, keys)
        return keys


def _file_keys(path: str) -> list[Any]:
    """Keys from a local JWKS JSON file or a PEM public key."""
    data = Path(path.removeprefix("file://")).read_bytes()
    if data.lstrip().startswith(b"{"):
        keys = json.loads(data).get("keys", [])
        return [jwt.PyJWK(k) for k in keys]
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return [load_pem_public_key(data)]


def _same_origin(url: str, issuer: str) -> bool:
    a, b = urlparse(url), urlparse(issuer)
    return a.scheme in ("https", "http") and (a.scheme, a.netloc) == (b.scheme, b.netloc)


class CdsJwtVerifier:
    """Checks `Authorization: Bearer <jwt>` of CDS Hooks requests against the settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        seen: Callable[[str, float], bool],
        fetcher: JwksFetcher | None = None,
    ) -> None:
        self.audience = f"{settings.public_url}/cds-services/trial-eligibility"
        self._issuers: dict[str, str] = {}
        for entry in settings.cds_issuers:
            issuer, _, keys = entry.partition("|")
            self._issuers[issuer.strip()] = keys.strip()
        self._seen = seen
        self._fetcher = fetcher or JwksFetcher()

    def verify(
        self, authorization: str | None, audience: str | list[str] | None = None
    ) -> dict[str, Any]:
        """The verified claims; CdsAuthError with the reason otherwise."""
        if not authorization or not authorization.strip().lower().startswith("bearer "):
            raise CdsAuthError("a JWT is required in Authorization: Bearer <jwt>")
        token = authorization.strip()[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise CdsAuthError("the bearer token is not a JWT") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGS:
            raise CdsAuthError(f"JWT alg {str(alg)[:16]!r} is not allowed; use one of "
                               + ", ".join(ALLOWED_ALGS))
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer not in self._issuers:
            raise CdsAuthError("the JWT issuer is not on the allow-list (CDS_ISSUERS)")
        key = self._key_for(issuer, header, alg)
        try:
            claims = jwt.decode(
                token, key=key, algorithms=[alg], audience=audience or self.audience,
                issuer=issuer, leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise CdsAuthError("the JWT has expired") from None
        except jwt.InvalidAudienceError:
            wanted = audience or self.audience
            shown = wanted if isinstance(wanted, str) else " or ".join(wanted)
            raise CdsAuthError(f"the JWT audience must be {shown}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise CdsAuthError(f"the JWT lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise CdsAuthError(f"the JWT is not valid: {type(exc).__name__}") from None
        jti = claims["jti"]
        ttl = max(float(claims["exp"]) - time.time(), 0) + LEEWAY_SECONDS
        if not isinstance(jti, str) or not self._seen(f"cds-jti:{issuer}:{jti}", ttl):
            raise CdsAuthError("the JWT's jti was already used (replay)")
        return claims

    def _key_for(self, issuer: str, header: dict[str, Any], alg: str) -> Any:
        source = self._issuers[issuer]
        kid = header.get("kid")
        if not source:
            jku = header.get("jku")
            if not isinstance(jku, str) or not _same_origin(jku, issuer):
                raise CdsAuthError("no keys configured for this issuer and no jku on its origin")
            source = jku
        if source.startswith(("http://", "https://")):
            key = self._pick(self._fetcher.keys(source), kid, alg)
            if key is None:
                key = self._pick(self._fetcher.keys(source, refresh=True), kid, alg)
        else:
            try:
                key = self._pick(_file_keys(source), kid, alg)
            except (OSError, ValueError) as exc:
                raise CdsAuthError(f"cannot read the issuer's keys: {type(exc).__name__}") from None
        if key is None:
            raise CdsAuthError("no key of the issuer matches the JWT's kid and alg")
        return key

    @staticmethod
    def _pick(keys: list[Any], kid: Any, alg: str) -> Any:
        wanted_kty = _KEY_TYPE[alg[:2]]
        candidates: list[tuple[str | None, Any]] = []
        for raw in keys:
            try:
                jwk = raw if not isinstance(raw, dict) else jwt.PyJWK(raw)
            except jwt.PyJWTError:
                continue  # a key type or alg we do not use: skip it
            if not isinstance(jwk, jwt.PyJWK):
                candidates.append((None, jwk))  # PEM key: no kid
                continue
            if jwk.key_type != wanted_kty:
                continue
            candidates.append((jwk.key_id, jwk.key))
        if kid is None:
            return candidates[0][1] if candidates else None
        # A key with the token's kid, else one that names no kid at all.
        for key_kid in (kid, None):
            for candidate_kid, key in candidates:
                if candidate_kid == key_kid:
                    return key
        return None
