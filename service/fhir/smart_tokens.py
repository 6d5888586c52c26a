"""SMART Backend Services access tokens for one FHIR client: fetched once, shared, refreshed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from service.core.settings import Settings
from service.fhir import smart_auth
from service.fhir.errors import FhirAuthError

log = logging.getLogger(__name__)

# The client's request function: (method, url, *, what=..., ...) -> parsed JSON body. The token
# requests go through it so that they get the same retries, errors and counting as FHIR ones.
Send = Callable[..., Any]


class SmartTokens:
    """The access token of a client using `FHIR_AUTH=smart`; safe to share between threads."""

    def __init__(self, settings: Settings, send: Send, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._send = send
        self._clock = clock
        self._lock = threading.Lock()
        self._token: smart_auth.AccessToken | None = None
        self._token_url = settings.smart_token_url
        try:
            self._key = smart_auth.load_private_key(
                settings.smart_private_key_path or "", settings.smart_alg
            )
        except smart_auth.SmartAuthError as exc:
            raise FhirAuthError(str(exc)) from None

    def current(self) -> str:
        """A usable access token: the cached one, or a new one when it is (nearly) expired."""
        # One thread fetches, the others wait and reuse the cached token.
        with self._lock:
            if self._token is None or not self._token.usable(self._clock()):
                self._token = self._fetch()
            return self._token.value

    def drop(self, used: str | None) -> None:
        """Forget the token a server refused (401), unless another thread replaced it already."""
        with self._lock:
            if self._token is not None and self._token.value == used:
                self._token = None

    def _discover_token_url(self) -> str:
        base_url = self._settings.fhir_base_url.rstrip("/")
        config = self._send(
            "GET",
            f"{base_url}/.well-known/smart-configuration",
            what="SMART discovery",
            authenticate=False,
            accept="application/json",
        )
        try:
            return smart_auth.token_endpoint_from_configuration(config, self._settings.smart_alg)
        except smart_auth.SmartAuthError as exc:
            raise FhirAuthError(f"SMART discovery: {exc}") from None

    def _fetch(self) -> smart_auth.AccessToken:
        if not self._token_url:
            self._token_url = self._discover_token_url()
        token_url = self._token_url
        settings = self._settings

        def form() -> dict[str, str]:
            # A new assertion (new jti, fresh exp) for every attempt: servers reject replays.
            assertion = smart_auth.client_assertion(
                client_id=settings.smart_client_id or "",
                token_url=token_url,
                key=self._key,
                alg=settings.smart_alg,
                kid=settings.smart_key_id,
                now=self._clock(),
            )
            return smart_auth.token_request_form(assertion, settings.smart_scope)

        body = self._send(
            "POST",
            token_url,
            form=form,
            what="SMART token request",
            authenticate=False,
            accept="application/json",
            token_endpoint=True,
        )
        try:
            token = smart_auth.parse_token_response(body, self._clock())
        except smart_auth.SmartAuthError as exc:
            raise FhirAuthError(f"SMART token request: {exc}") from None
        log.info("SMART access token obtained (valid for %.0f s)", token.expires_at - self._clock())
        return token
