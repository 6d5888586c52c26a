"""SMART Backend Services pieces that need no network: key loading, client assertion, token."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART Backend Services: the assertion must expire no more than five minutes after issue.
ASSERTION_LIFETIME_SECONDS = 300
# Refresh this long before the token's own expiry so a request never carries a stale token.
EXPIRY_MARGIN_SECONDS = 60
# Used when the token response has no expires_in (RFC 6749 makes it optional).
DEFAULT_TOKEN_LIFETIME_SECONDS = 300
SUPPORTED_ALGS = ("RS384", "ES384")


class SmartAuthError(ValueError):
    """The SMART configuration, key or token response cannot be used (message has no secrets)."""


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def load_private_key(path: str | Path, alg: str) -> PrivateKey:
    """Read a PEM private key and check it fits the signing algorithm (RSA or EC P-384)."""
    if alg not in SUPPORTED_ALGS:
        raise SmartAuthError(f"signing algorithm {alg!r} is not one of {', '.join(SUPPORTED_ALGS)}")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SmartAuthError(f"cannot read SMART key {str(path)!r}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SmartAuthError(
            f"SMART private key {str(path)!r} is not an unencrypted PEM private key"
        ) from None
    if alg == "RS384":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SmartAuthError("RS384 needs an RSA private key")
        if key.key_size < 2048:
            raise SmartAuthError("RS384 needs an RSA key of at least 2048 bits")
    elif not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP384R1):
        raise SmartAuthError("ES384 needs an EC private key on curve P-384")
    return key


def client_assertion(
    *,
    client_id: str,
    token_url: str,
    key: PrivateKey,
    alg: str,
    kid: str | None,
    now: float,
    jti: str | None = None,
) -> str:
    """The signed private_key_jwt assertion (iss = sub = client id, aud = token URL)."""
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": int(now),
        "exp": int(now) + ASSERTION_LIFETIME_SECONDS,
        # A fresh jti per assertion: servers reject replays of the same one.
        "jti": jti or str(uuid.uuid4()),
    }
    headers: dict[str, Any] = {"typ": "JWT"}
    if kid:
        headers["kid"] = kid
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def token_request_form(assertion: str, scope: str) -> dict[str, str]:
    """Form fields of the client_credentials token request."""
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
    }


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when this client stops using it."""

    value: str = field(repr=False)
    expires_at: float
    scope: str | None = None

    def usable(self, now: float) -> bool:
        """True until shortly before expiry."""
        return now < self.expires_at


def parse_token_response(body: Any, now: float) -> AccessToken:
    """Read an OAuth token response; the refresh moment is expiry minus a safety margin."""
    if not isinstance(body, Mapping):
        raise SmartAuthError("token endpoint answer is not a JSON object")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise SmartAuthError("token endpoint answer has no access_token")
    token_type = str(body.get("token_type", "bearer")).lower()
    if token_type != "bearer":
        raise SmartAuthError(f"token endpoint issued a {token_type!r} token, not a bearer token")
    lifetime = body.get("expires_in", DEFAULT_TOKEN_LIFETIME_SECONDS)
    try:
        lifetime = float(lifetime)
    except (TypeError, ValueError):
        raise SmartAuthError("token endpoint answer has a non-numeric expires_in") from None
    # Short-lived tokens: keep half their life as margin instead of a fixed minute.
    margin = min(EXPIRY_MARGIN_SECONDS, lifetime / 2)
    scope = body.get("scope")
    return AccessToken(
        value=token,
        expires_at=now + lifetime - margin,
        scope=scope if isinstance(scope, str) else None,
    )


def token_endpoint_from_configuration(config: Any, alg: str) -> str:
    """The token endpoint of a .well-known/smart-configuration document, checked for our method."""
    if not isinstance(config, Mapping):
        raise SmartAuthError("smart-configuration is not a JSON object")
    endpoint = config.get("token_endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        raise SmartAuthError("smart-configuration has no usable token_endpoint")
    methods = config.get("token_endpoint_auth_methods_supported")
    if isinstance(methods, list) and "private_key_jwt" not in methods:
        raise SmartAuthError("the authorization server does not offer private_key_jwt")
    algs = config.get("token_endpoint_auth_signing_alg_values_supported")
    if isinstance(algs, list) and alg not in algs:
        raise SmartAuthError(
            f"the authorization server does not accept {alg} assertions (offers {', '.join(algs)})"
        )
    return endpoint
