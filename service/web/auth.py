"""Bearer-token authentication of the HTTP API (constant-time compare, per-endpoint exemptions)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from flask import Flask, request

from service.core.settings import Settings
from service.web.problems import Problem

F = TypeVar("F", bound=Callable[..., Any])
AuthMode = Literal["public", "own", "cds"]


def auth_mode(mode: AuthMode) -> Callable[[F], F]:
    """Mark a view: "public" (no token), "own" (its own secret), "cds" (CDS Hooks JWT)."""

    def mark(view: F) -> F:
        view.auth_mode = mode  # type: ignore[attr-defined]
        return view

    return mark


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_matches(presented: str | None, accepted: tuple[str, ...]) -> bool:
    """True when presented equals one of the accepted tokens; every one is compared."""
    if presented is None:
        return False
    given = presented.encode()
    # Compare against every token so the time taken does not reveal which one matched.
    results = [hmac.compare_digest(given, token.encode()) for token in accepted]
    return any(results)


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """The host names answered when no API token is set: PUBLIC_URL's, the notification
    base URL's, and the loopback names."""
    names = set(LOOPBACK_NAMES)
    for url in (settings.public_url, settings.notify_base_url):
        host = urlsplit(url or "").hostname
        if host:
            names.add(host.lower())
    return frozenset(names)


def request_host() -> str:
    """The host name the request was sent to (Host header), lower-case, without the port."""
    host = request.host.lower()
    if host.startswith("["):  # [::1]:8000
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def install_api_auth(app: Flask, settings: Settings) -> None:
    """Require the API token on every endpoint that is not exempt (when a token is set)."""
    hosts = allowed_hosts(settings)

    @app.before_request
    def _require_token() -> None:
        if not settings.api_tokens:
            # Open (loopback only): a page of any website may reach the loopback port, and
            # DNS rebinding makes its own host name point there. Answering only our own
            # names keeps that page from reading answers (issue 22, finding 6).
            if request_host() not in hosts:
                raise Problem(
                    421, "This service answers only its own host names (PUBLIC_URL's and "
                    "loopback) while no API token is set.", slug="misdirected-request",
                )
            return
        view = app.view_functions.get(request.endpoint or "")
        if view is None:
            return  # unknown route or static: the 404/405 handlers answer
        mode = getattr(view, "auth_mode", None)
        if mode in ("public", "own"):
            return
        if mode == "cds" and settings.cds_jwt_required:
            return  # the CDS client's JWT in Authorization is checked by the view
        presented = bearer_token(request.headers.get("Authorization"))
        if not token_matches(presented, settings.api_tokens):
            raise Problem(
                401, "A valid API token is required (Authorization: Bearer <token>).",
                slug="unauthorized",
            )
