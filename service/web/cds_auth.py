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

from service.core.settings import Settings

log = logging.getLogger(__name__)

ALLOWED_ALGS = ("RS384", "ES384", "RS256", "ES256")
_KEY_TYPE = {"RS": "RSA", "ES": "EC"}
JWKS_TTL_SECONDS = 300.0
JWKS_REFRESH_MIN_SECONDS = 30.0  # an unknown kid refetches at most this often
LEEWAY_SECONDS = 30
# CDS Hooks 2.0, "Trusting CDS Clients": the JWT's exp should be at most 5 minutes after iat.
MAX_LIFETIME_SECONDS = 300


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
            # Never through a redirect: the URL was checked (configured, or a jku on the
            # issuer's origin), the place a redirect leads to was not.
            response = self._session.get(url, timeout=self._timeout, allow_redirects=False,
                                         headers={"Accept": "application/json"})
            if response.is_redirect or 300 <= response.status_code < 400:
                raise CdsAuthError(f"the JWKS URL {url} redirects; keys are read only from "
                                   "the URL itself")
            response.raise_for_status()
            keys = response.json().get("keys")
        except CdsAuthError:
            raise
        except (requests.RequestException, ValueError, AttributeError, RecursionError) as exc:
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
        wanted = audience or self.audience
        # Every check that needs no key comes first: an unsigned or stale token never makes
        # the service fetch anything.
        self._decode(token, None, alg, issuer, wanted)
        self._check_lifetime(unverified)
        key = self._key_for(issuer, header, alg)
        claims = self._decode(token, key, alg, issuer, wanted)
        jti = claims["jti"]
        ttl = max(float(claims["exp"]) - time.time(), 0) + LEEWAY_SECONDS
        if not isinstance(jti, str) or not self._seen(f"cds-jti:{issuer}:{jti}", ttl):
            raise CdsAuthError("the JWT's jti was already used (replay)")
        return claims

    @staticmethod
    def _decode(token: str, key: Any, alg: str, issuer: str, audience: str | list[str]
                ) -> dict[str, Any]:
        """The claims, checked (iss, aud, exp, iat; the signature too when key is given)."""
        options: Any = {"require": ["iss", "aud", "exp", "iat", "jti"]}
        if key is None:
            options.update(verify_signature=False, verify_exp=True, verify_iat=True,
                           verify_aud=True, verify_iss=True)
        try:
            return jwt.decode(
                token, key=key, algorithms=[alg], audience=audience, issuer=issuer,
                leeway=LEEWAY_SECONDS, options=options,
            )
        except jwt.ExpiredSignatureError:
            raise CdsAuthError("the JWT has expired") from None
        except jwt.ImmatureSignatureError:
            raise CdsAuthError("the JWT is issued in the future (iat)") from None
        except jwt.InvalidAudienceError:
            shown = audience if isinstance(audience, str) else " or ".join(audience)
            raise CdsAuthError(f"the JWT audience must be {shown}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise CdsAuthError(f"the JWT lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise CdsAuthError(f"the JWT is not valid: {type(exc).__name__}") from None

    @staticmethod
    def _check_lifetime(claims: dict[str, Any], now: float | None = None) -> None:
        """CDS Hooks: exp at most 5 minutes after iat; an iat long past is refused too."""
        now = time.time() if now is None else now
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise CdsAuthError("the JWT's iat and exp must be numbers")
        if exp - iat > MAX_LIFETIME_SECONDS:
            raise CdsAuthError(f"the JWT lives longer than {MAX_LIFETIME_SECONDS} s (exp - iat)")
        if now - iat > MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
            raise CdsAuthError("the JWT was issued too long ago (iat)")

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
