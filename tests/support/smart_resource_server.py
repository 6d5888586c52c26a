"""A SMART-protected FHIR endpoint for tests: checks each bearer token, then forwards upstream.

Sits on loopback in front of the local FHIR server. `/.well-known/smart-configuration` is open
and names the OpenID provider's token endpoint; every other request needs
`Authorization: Bearer <JWT access token>` signed by the provider (its JWKS), for this
server's URL (`aud`), unexpired, with a `system/` scope: else 401 and nothing is forwarded.
The tokens it accepted are recorded, so a test can count how often the client renewed.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import jwt

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                         "authorization", "host"})


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/fhir+json",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        guard = self.server.guard
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.split("?")[0].endswith("/.well-known/smart-configuration"):
            self._send(200, json.dumps(guard.smart_configuration()).encode(), "application/json")
            return
        problem = guard.check(self.headers.get("Authorization", ""))
        if problem:
            guard.refused.append(problem)
            self._send(401, json.dumps({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "login", "diagnostics": problem}]}).encode(),
                extra={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return
        status, headers, payload = guard.forward(self.command, self.path, self.headers, body)
        self._send(status, payload, headers.get("content-type", "application/fhir+json"))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, guard: SmartResourceServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.guard = guard


class SmartResourceServer:
    """`base_url` (…/fhir) guarded by tokens of `issuer`, forwarding to `upstream_base_url`."""

    def __init__(self, upstream_base_url: str) -> None:
        self._server = _Server(self)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/fhir"
        self.upstream_base_url = upstream_base_url.rstrip("/")
        self.issuer: str | None = None
        self.token_endpoint: str | None = None
        self._jwks: jwt.PyJWKClient | None = None
        self.accepted: list[dict[str, Any]] = []  # claims of every request let through
        self.refused: list[str] = []
        self._revoked: set[str] = set()
        self._lock = threading.Lock()

    def trust(self, issuer: str, token_endpoint: str, jwks_uri: str) -> SmartResourceServer:
        """Accept tokens of this provider and advertise its token endpoint."""
        self.issuer, self.token_endpoint = issuer, token_endpoint
        self._jwks = jwt.PyJWKClient(jwks_uri)
        return self

    def start(self) -> SmartResourceServer:
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="smart-resource-server").start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def smart_configuration(self) -> dict[str, Any]:
        return {
            "token_endpoint": self.token_endpoint,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "grant_types_supported": ["client_credentials"],
            "capabilities": ["client-confidential-asymmetric", "permission-v2"],
        }

    def check(self, authorization: str) -> str | None:
        """Why the request is refused, or None when its token is good."""
        if not authorization.startswith("Bearer ") or self._jwks is None:
            return "no bearer token"
        token = authorization[len("Bearer "):]
        if token in self._revoked:
            return "token revoked"
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=self.base_url,
                                issuer=self.issuer, options={"require": ["exp", "iat"]})
        except jwt.PyJWTError as exc:
            return f"token refused: {type(exc).__name__}"
        if not any(s.startswith("system/") for s in str(claims.get("scope", "")).split()):
            return "token has no system scope"
        with self._lock:
            self.accepted.append({**claims, "_token": token})
        return None

    def reset(self) -> None:
        """Forget what was accepted and refused (between tests sharing this server)."""
        with self._lock:
            self.accepted.clear()
            self.refused.clear()

    def revoke(self, token: str) -> None:
        """Refuse this token from now on, as after a revocation at the provider."""
        self._revoked.add(token)

    def distinct_tokens(self) -> int:
        """How many different access tokens were let through."""
        return len({claims["_token"] for claims in self.accepted})

    def forward(self, method: str, path: str, headers: Any,
                body: bytes) -> tuple[int, dict[str, str], bytes]:
        upstream = urlsplit(self.upstream_base_url)
        suffix = path[len("/fhir"):] if path.startswith("/fhir") else path
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(method, upstream.path + suffix, body=body or None,
                               headers=forwarded)
            response = connection.getresponse()
            payload = response.read()
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()
        # Links in bundles (next pages, fullUrl) must name this server, not the one behind it.
        payload = payload.replace(self.upstream_base_url.encode(), self.base_url.encode())
        return response.status, answer_headers, payload
