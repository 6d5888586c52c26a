"""The one HTTP boundary to the FHIR R4 server: requests, paging, auth, record reads."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from service.core.metrics import observe_fhir_request
from service.core.settings import Settings
from service.fhir import queries as retrieval
from service.fhir import retries
from service.fhir.api import ClientFactory, FhirApi
from service.fhir.errors import (
    FhirAuthError,
    FhirError,
    FhirProtocolError,
    FhirTemporaryError,
    error_class,
    failed_outcome,
    outcome_message,
    status_of,
)
from service.fhir.record_read import RecordRead
from service.fhir.smart_tokens import SmartTokens

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
USER_AGENT = "trial-eligibility/0.1"
_RESOURCE_TYPE_RE = re.compile(r"[A-Z][A-Za-z]{1,63}")



class FhirClient:
    """FHIR R4 REST client over one requests.Session; safe to share between threads."""

    def __init__(
        self,
        settings: Settings,
        session: requests.Session | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.base_url = settings.fhir_base_url.rstrip("/")
        self.page_size = settings.fhir_page_size  # _count of the searches it builds
        self._origin = self._origin_of(self.base_url)
        self._session = session if session is not None else requests.Session()
        self._owns_session = session is None
        if self._owns_session:
            # Proxy settings come from the environment once, not on every request (requests
            # re-reads them per call otherwise: ~0.1 ms a request on the hot path).
            self._session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
            # trust_env also carried a hospital's CA bundle from the environment: keep it.
            ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if ca_bundle:
                self._session.verify = ca_bundle
            self._session.trust_env = False
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._lock = threading.Lock()
        self._request_count = 0
        self._token_request_count = 0
        self._tokens: SmartTokens | None = None
        if settings.fhir_auth == "smart":
            self._tokens = SmartTokens(settings, self._request, clock)

    # ------------------------------------------------------------------ bookkeeping

    @property
    def request_count(self) -> int:
        """HTTP requests sent to the FHIR server so far (every attempt; not token requests)."""
        return self._request_count

    @property
    def token_request_count(self) -> int:
        """Requests sent to the SMART token endpoint so far."""
        return self._token_request_count

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _origin_of(url: str) -> tuple[str, str]:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.netloc.lower()

    # ------------------------------------------------------------------ authentication

    def _auth_headers(self) -> dict[str, str]:
        mode = self.settings.fhir_auth
        if mode == "bearer":
            return {"Authorization": f"Bearer {self.settings.fhir_bearer_token}"}
        if mode == "smart":
            assert self._tokens is not None
            return {"Authorization": f"Bearer {self._tokens.current()}"}
        return {}

    # ------------------------------------------------------------------ transport

    def _count(self, token_endpoint: bool) -> None:
        with self._lock:
            if token_endpoint:
                self._token_request_count += 1
            else:
                self._request_count += 1

    @staticmethod
    def _observe(method: str, started: float, error: str | None, token_endpoint: bool) -> None:
        # Every attempt to the FHIR server, timed here: the one place requests are sent.
        if not token_endpoint:
            observe_fhir_request(method, time.perf_counter() - started, error)

    def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Any = None,
        json_body: Any = None,
        form: Callable[[], dict[str, str]] | None = None,
        idempotent: bool = True,
        authenticate: bool = True,
        accept: str = FHIR_JSON,
        token_endpoint: bool = False,
        extra_headers: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> Any:
        """Send with retries; return the parsed JSON body of a 2xx answer or raise FhirError.

        With `raw`, a 2xx answer is returned as the streamed `requests.Response` itself (Bulk
        Data: its status and headers matter, and an NDJSON file is read as a stream).
        """
        payload = None
        if json_body is not None:
            payload = json.dumps(json_body, separators=(",", ":")).encode()
        attempt = 0
        refreshed = False
        while True:
            headers = {"Accept": accept, "User-Agent": USER_AGENT}
            if not token_endpoint:
                # HAPI answers an identical search within 60 s from its stored result unless
                # told not to; a batch's entries inherit the batch request's headers.
                headers["Cache-Control"] = "no-cache"
            if payload is not None:
                headers["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
            headers.update(extra_headers or {})
            used_token = None
            if authenticate:
                auth = self._auth_headers()
                headers.update(auth)
                used_token = auth.get("Authorization", "")[len("Bearer ") :] or None
            data: Any = form() if form is not None else payload
            self._count(token_endpoint)
            started = time.perf_counter()
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=self.settings.fhir_timeout,
                    allow_redirects=False,
                    stream=raw,
                )
            except retries.TRANSPORT_ERRORS as exc:
                self._observe(method, started, "transport", token_endpoint)
                kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
                error: FhirError = FhirTemporaryError(
                    f"{what}: connection to {urlsplit(url).netloc} {kind} ({type(exc).__name__})"
                )
                may_retry = idempotent or retries.never_sent(exc)
            else:
                status = response.status_code
                self._observe(method, started, None if status < 400
                              else "4xx" if status < 500 else "5xx", token_endpoint)
                if (
                    status == 401
                    and authenticate
                    and self.settings.fhir_auth == "smart"
                    and not refreshed
                ):
                    # The token may have been revoked or expired early: one fresh token, once.
                    refreshed = True
                    assert self._tokens is not None
                    self._tokens.drop(used_token)
                    log.info("%s: 401, refreshing the SMART access token once", what)
                    continue
                if 200 <= status < 300:
                    return response if raw else self._parse_body(response, what)
                error = self._response_error(response, what, token_endpoint=token_endpoint)
                may_retry = error.retryable and (idempotent or status in (429, 503))
            if not may_retry or attempt >= self.settings.fhir_max_retries:
                raise error
            delay = retries.backoff_delay(attempt, error.retry_after, self._jitter)
            if delay is None:
                raise error
            attempt += 1
            log.warning(
                "%s: %s; retry %d/%d in %.1f s",
                what,
                error.status or "transport error",
                attempt,
                self.settings.fhir_max_retries,
                delay,
            )
            self._sleep(delay)

    def _parse_body(self, response: requests.Response, what: str) -> Any:
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if response.status_code == 204 or not response.content:
            return None
        # Mislabelled JSON (text/plain) still parses below; HTML or XML never is FHIR JSON.
        if "html" in ctype or "xml" in ctype:
            raise FhirProtocolError(
                f"{what}: the server answered {response.status_code} with {ctype}, not FHIR JSON",
                status=response.status_code,
            )
        try:
            return response.json()
        except (ValueError, RecursionError):
            # RecursionError: nesting deeper than the parser's stack is no FHIR answer either.
            raise FhirProtocolError(
                f"{what}: the server answered {response.status_code} with invalid JSON",
                status=response.status_code,
            ) from None

    def _response_error(
        self, response: requests.Response, what: str, *, token_endpoint: bool = False
    ) -> FhirError:
        status = response.status_code
        cls = error_class(status)
        if token_endpoint and 400 <= status < 500 and cls is not FhirTemporaryError:
            # invalid_client, invalid_scope, unauthorized_client...: the credentials are wrong.
            cls = FhirAuthError
        retry_after = retries.parse_retry_after(response.headers.get("Retry-After"), self._clock())
        body: Any = None
        try:
            body = response.json()
        except (ValueError, RecursionError):
            body = None
        detail = outcome_message(body)
        if detail is None and isinstance(body, Mapping) and isinstance(body.get("error"), str):
            # OAuth error answer from a token endpoint (RFC 6749 section 5.2).
            detail = body["error"]
            if isinstance(body.get("error_description"), str):
                detail += f": {body['error_description'][:300]}"
        if detail is None:
            ctype = response.headers.get("Content-Type", "").split(";")[0].strip() or "no"
            detail = f"no OperationOutcome ({ctype} body)"
        if status == 304:
            cls = FhirProtocolError
            detail = "Not Modified, but this client sends no conditional reads"
        elif 300 <= status < 400:
            cls = FhirProtocolError
            detail = (
                f"redirected to {response.headers.get('Location', '?')}; "
                "set FHIR_BASE_URL to the final address"
            )
        reason = response.reason or ""
        return cls(
            f"{what}: {status} {reason}: {detail}".replace("  ", " "),
            status=status,
            retry_after=retry_after,
            outcome=body if isinstance(body, dict) and "issue" in body else None,
        )

    def next_page_url(self, link: str, what: str) -> str:
        """The absolute URL of a search's next link, refused when it leaves the FHIR server."""
        # Next links are followed as given, but only on the FHIR server itself: our
        # credentials never go to another host.
        absolute = urljoin(self.base_url + "/", link)
        if self._origin_of(absolute) != self._origin:
            raise FhirProtocolError(
                f"{what}: next link points to {urlsplit(absolute).netloc}, not the FHIR server"
            )
        return absolute

    def relative_to_base(self, absolute: str) -> str | None:
        """`absolute` relative to the FHIR base (for a batch entry), or None when elsewhere."""
        base = self.base_url
        if absolute.startswith(base) and absolute[len(base) : len(base) + 1] in ("", "/", "?"):
            return absolute[len(base) :].lstrip("/")
        return None

    def _record_read(self, queries: Sequence[retrieval.Query]) -> RecordRead:
        return RecordRead(self, queries, max_pages=self.settings.fhir_max_pages,
                          max_resources=self.settings.fhir_max_resources)

    def get_page(self, url: str, what: str) -> Any:
        """GET one absolute URL on the FHIR server (a search page), with retries and auth."""
        return self._request("GET", url, what=what)

    # ------------------------------------------------------------------ FHIR interactions

    def capabilities(self) -> dict[str, Any]:
        """The server's CapabilityStatement (GET metadata)."""
        body = self._request("GET", f"{self.base_url}/metadata", what="GET metadata")
        if not isinstance(body, dict) or body.get("resourceType") != "CapabilityStatement":
            raise FhirProtocolError("GET metadata: the answer is not a CapabilityStatement")
        return body

    def send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Any = None,
        accept: str = FHIR_JSON,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
        body: Mapping[str, Any] | None = None,
    ) -> requests.Response:
        """One request (retried as any other) whose 2xx answer is returned as a streamed
        Response: Bulk Data's kick-off, status polls and NDJSON downloads."""
        response: requests.Response = self._request(
            method, url, what=what, params=params, accept=accept, extra_headers=headers,
            authenticate=authenticate, raw=True, json_body=body,
            # A POST kick-off starts a job: not resent after a connection that may have
            # delivered it (a second job would run for nothing).
            idempotent=method != "POST")
        return response

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """Read one resource; FhirNotFound when it does not exist or was deleted."""
        valid_id = retrieval.FHIR_ID.fullmatch(resource_id)
        if not _RESOURCE_TYPE_RE.fullmatch(resource_type) or not valid_id:
            raise ValueError(f"not a FHIR reference: {resource_type}/{resource_id}")
        what = f"read {resource_type}/{resource_id}"
        body = self._request("GET", f"{self.base_url}/{resource_type}/{resource_id}", what=what)
        if not isinstance(body, dict) or body.get("resourceType") != resource_type:
            raise FhirProtocolError(f"{what}: the answer is not a {resource_type}")
        return body

    def search(
        self,
        resource_type: str,
        params: Mapping[str, Any] | Sequence[tuple[str, str]] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every resource of a search (matches and includes), following next links."""
        if not _RESOURCE_TYPE_RE.fullmatch(resource_type):
            raise ValueError(f"not a FHIR resource type: {resource_type!r}")
        what = f"search {resource_type}"
        pager = self._record_read([])
        bundle = self._request("GET", f"{self.base_url}/{resource_type}", params=params, what=what)
        while True:
            resources, next_link = pager.page(resource_type, bundle, what)
            yield from resources
            if next_link is None:
                return
            bundle = self._request("GET", self.next_page_url(next_link, what), what=what)

    def search_population(
        self, resource_type: str, params: Mapping[str, Any] | Sequence[tuple[str, str]] | None
        = None, *, includes: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Every match of a search over the whole server (`screen --all`, the worklist), page
        by page; with `includes`, the resources its `_include` brought too.

        Unlike `search` (one patient's record) no page or resource cap applies: a hospital's
        Patients or Conditions fill thousands of pages, and only one page is held at a time.
        A page short of the reported total without a next link, or a next link that repeats,
        is an error, never a silently shorter population.
        """
        if not _RESOURCE_TYPE_RE.fullmatch(resource_type):
            raise ValueError(f"not a FHIR resource type: {resource_type!r}")
        what = f"search {resource_type} (population)"
        bundle = self._request("GET", f"{self.base_url}/{resource_type}", params=params, what=what)
        matched, total, links = 0, None, set()
        while True:
            if (not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle"
                    or bundle.get("type") != "searchset"):
                raise FhirProtocolError(f"{what}: a search answer is not a searchset Bundle")
            if total is None and isinstance(bundle.get("total"), int):
                total = bundle["total"]
            for entry in bundle.get("entry") or ():
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if not isinstance(resource, dict):
                    continue
                if resource.get("resourceType") == resource_type:
                    matched += 1
                    yield resource
                elif includes and resource.get("resourceType") != "OperationOutcome":
                    yield resource
            next_link = next((str(link["url"]) for link in bundle.get("link") or ()
                              if isinstance(link, dict) and link.get("relation") == "next"
                              and link.get("url")), None)
            if next_link is None:
                if total is not None and matched < total:
                    raise FhirProtocolError(f"{what}: the server reported {total} matches but "
                                            f"returned {matched} and no next link")
                return
            if next_link in links:
                raise FhirProtocolError(f"{what}: the server repeated a next link")
            links.add(next_link)
            bundle = self._request("GET", self.next_page_url(next_link, what), what=what)

    def batch(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        """POST a batch Bundle; per-entry failures stay in the batch-response."""
        return self._post_bundle(bundle, "batch")

    def transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        """POST a transaction Bundle (all or nothing)."""
        return self._post_bundle(bundle, "transaction")

    def _post_bundle(self, bundle: Mapping[str, Any], kind: str) -> dict[str, Any]:
        entries = len(bundle.get("entry") or ())
        what = f"{kind} ({entries} entries)"
        answer = self._request(
            "POST",
            self.base_url,
            json_body=bundle,
            what=what,
            idempotent=retries.idempotent_bundle(bundle),
        )
        self._check_bundle_answer(answer, f"{kind}-response", entries, what)
        return answer

    @staticmethod
    def _check_bundle_answer(answer: Any, kind: str, entries: int, what: str) -> None:
        if not isinstance(answer, dict) or answer.get("resourceType") != "Bundle":
            raise FhirProtocolError(f"{what}: the answer is not a Bundle")
        if answer.get("type") != kind:
            raise FhirProtocolError(f"{what}: the answer is a {answer.get('type')!r}, not {kind}")
        if len(answer.get("entry") or ()) != entries:
            raise FhirProtocolError(
                f"{what}: {len(answer.get('entry') or ())} answers for {entries} requests"
            )

    # ------------------------------------------------------------------ record retrieval

    def entry_error(self, entry: Any, what: str) -> FhirError | None:
        """The error a batch or transaction answer entry stands for, or None when it succeeded."""
        answer = entry.get("response") if isinstance(entry, dict) else None
        status = status_of((answer or {}).get("status"))
        if status is None:
            return FhirProtocolError(f"{what}: batch entry without a response status")
        if 200 <= status < 300:
            if failed_outcome((answer or {}).get("outcome")) or failed_outcome(
                    entry.get("resource")):
                return FhirProtocolError(
                    f"{what}: {status} with an error OperationOutcome (the request failed)"
                )
            return None
        detail = outcome_message((answer or {}).get("outcome")) or outcome_message(
            entry.get("resource")
        )
        cls = error_class(status)
        return cls(f"{what}: {status}: {detail or 'no OperationOutcome'}", status=status)

    def run_queries(self, queries: Sequence[retrieval.Query]) -> dict[str, list[dict[str, Any]]]:
        """Run the record queries: one batch, then one batch per round of next pages.

        Medications referenced but not returned (a server ignoring _include) are fetched in
        the next round. Without paging this costs exactly one request.
        """
        return self._record_read(queries).run()


__all__ = ["ClientFactory", "FhirApi", "FhirClient"]
