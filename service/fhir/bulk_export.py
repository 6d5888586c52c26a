"""FHIR Bulk Data export (`$export`): kick-off, status polls, manifest, NDJSON downloads, cancel."""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from service.core.settings import Settings
from service.fhir import retries
from service.fhir.errors import (
    FhirError,
    FhirFatalError,
    FhirNotFound,
    FhirProtocolError,
    FhirTemporaryError,
    outcome_message,
)
from service.fhir.queries import FHIR_ID

log = logging.getLogger(__name__)

NDJSON = "application/fhir+ndjson"
# A status answer without Retry-After is polled again after this long (the IG leaves it to us).
DEFAULT_POLL_SECONDS = 2.0
# A Retry-After longer than this is shortened: progress stays visible and a cancel is timely.
MAX_POLL_SECONDS = 120.0
# An export still running after this long is given up (and cancelled): a stuck job otherwise
# blocks a nightly run for ever.
DEFAULT_EXPORT_TIMEOUT_SECONDS = 6 * 3600.0
_CHUNK = 1 << 16


class BulkExportUnsupported(FhirFatalError):
    """The server offers no `$export` (CapabilityStatement, or 404/405 at kick-off)."""


class BulkExportRefused(FhirFatalError):
    """The server refused the kick-off or failed the export job."""


class BulkDownloadFailed(FhirTemporaryError):
    """An output file could not be downloaded, retries included (a later run may succeed)."""


class Transport(Protocol):
    """What the export needs of the FHIR client: FhirClient.send and the base URL."""

    base_url: str
    settings: Settings

    def send(self, method: str, url: str, *, what: str, params: Any = None,
             accept: str = ..., headers: Mapping[str, str] | None = None,
             authenticate: bool = True,
             body: Mapping[str, Any] | None = None) -> requests.Response: ...


@dataclass(frozen=True)
class ExportFile:
    """One output (or error) file of the manifest."""

    type: str
    url: str
    count: int | None = None


@dataclass(frozen=True)
class Manifest:
    """The completed export: when it was taken, its files, whether they need our token."""

    transaction_time: str
    requires_access_token: bool
    output: tuple[ExportFile, ...]
    error: tuple[ExportFile, ...]


@dataclass(frozen=True)
class ExportRequest:
    """What to export: the types, the optional filters and instant, and the Group if any."""

    types: tuple[str, ...]
    type_filters: tuple[str, ...] = ()
    since: str | None = None
    group: str | None = None


def offers_export(capabilities: Mapping[str, Any], group: str | None) -> bool:
    """Whether a CapabilityStatement names the `export` operation (system, or on Group)."""
    for rest in capabilities.get("rest") or ():
        if not isinstance(rest, Mapping):
            continue
        operations = list(rest.get("operation") or ())
        for resource in rest.get("resource") or ():
            if isinstance(resource, Mapping) and (group is None or resource.get("type") == "Group"):
                operations += list(resource.get("operation") or ())
        for op in operations:
            if not isinstance(op, Mapping):
                continue
            name = str(op.get("name") or "").lstrip("$")
            definition = str(op.get("definition") or "")
            if name.endswith("export") or definition.rstrip("/").endswith("export"):
                return True
    return False


def parse_manifest(body: Any) -> Manifest:
    """The completion manifest; FhirProtocolError when it is not one."""
    if not isinstance(body, Mapping) or not isinstance(body.get("transactionTime"), str):
        raise FhirProtocolError("bulk export: the completed status is not a manifest "
                                "(no transactionTime)")

    def files(key: str) -> tuple[ExportFile, ...]:
        out = []
        for item in body.get(key) or ():
            if not isinstance(item, Mapping) or not isinstance(item.get("url"), str):
                raise FhirProtocolError(f"bulk export: a manifest {key} entry has no url")
            count = item.get("count")
            out.append(ExportFile(str(item.get("type") or ""), item["url"],
                                  count if isinstance(count, int) else None))
        return tuple(out)

    return Manifest(body["transactionTime"], body.get("requiresAccessToken") is True,
                    files("output"), files("error"))


class BulkExport:
    """One export job on the FHIR server, from kick-off to its downloaded files."""

    def __init__(
        self,
        transport: Transport,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        on_progress: Callable[[str | None], None] = lambda text: None,
        timeout: float = DEFAULT_EXPORT_TIMEOUT_SECONDS,
    ) -> None:
        self.transport = transport
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._on_progress = on_progress
        self._timeout = timeout
        self.status_url: str | None = None
        self.type_filter_refused = False
        # The kick-off went as a POST (the GET URL with the filters was too long).
        self.posted_kick_off = False
        # Requests by kind and bytes downloaded (the benchmark's figures).
        self.requests: Counter[str] = Counter()
        self.bytes_downloaded = 0

    # ------------------------------------------------------------------ kick-off

    def _kick_off_url(self, group: str | None) -> str:
        base = self.transport.base_url.rstrip("/")
        if group is None:
            return f"{base}/$export"
        if not FHIR_ID.fullmatch(group):
            raise ValueError(f"--group {group[:80]!r} is not a FHIR id")
        return f"{base}/Group/{group}/$export"

    def kick_off(self, request: ExportRequest) -> str:
        """Start the export; the status URL.

        A URL too long for the server (414: the mapped codes in `_typeFilter`) is sent again as
        a POST with the same parameters in a body; a refused `_typeFilter` is dropped once.
        """
        url = self._kick_off_url(request.group)
        params = [("_outputFormat", NDJSON), ("_type", ",".join(request.types))]
        if request.since:
            params.append(("_since", request.since))
        filters = [("_typeFilter", f) for f in request.type_filters]
        try:
            response = self._kick(url, params + filters)
        except BulkExportRefused as exc:
            if not filters or exc.status not in (400, 414, 422):
                raise
            response = self._kick_again(url, params, filters, exc.status)
        location = response.headers.get("Content-Location")
        if response.status_code != 202 or not location:
            raise FhirProtocolError(
                f"bulk export kick-off: answered {response.status_code} without a status URL "
                "(Content-Location); not a Bulk Data server")
        self.status_url = self._same_origin(location, "status URL")
        return self.status_url

    def _kick_again(self, url: str, params: list[tuple[str, str]],
                    filters: list[tuple[str, str]], status: int | None) -> requests.Response:
        """The kick-off after its filters were refused: as a POST when the URL was too long,
        else (or when the POST form is refused too) without the filters."""
        if status == 414:
            # Bulk Data lets a client POST the kick-off's parameters (servers MAY accept it;
            # HAPI does), which keeps the filters: far less to export and download.
            posted = self._kick_by_post(url, params + filters)
            if posted is not None:
                return posted
        # _typeFilter is optional for servers: export the whole types, filter while reading.
        log.info("bulk export: _typeFilter refused (%s); exporting whole types", status)
        self.type_filter_refused = True
        return self._kick(url, params)

    def _kick_by_post(self, url: str, params: Sequence[tuple[str, str]]
                      ) -> requests.Response | None:
        """The kick-off as a POST of a Parameters body; None when the server refuses that form."""
        body = {"resourceType": "Parameters", "parameter": [
            {"name": name, "valueInstant" if name == "_since" else "valueString": value}
            for name, value in params]}
        try:
            response = self._kick(url, (), body=body)
        except (BulkExportRefused, BulkExportUnsupported) as exc:
            if exc.status not in (400, 404, 405, 414, 415, 422):
                raise
            log.info("bulk export: a POST kick-off was refused (%s)", exc.status)
            return None
        self.posted_kick_off = True
        return response

    def _kick(self, url: str, params: Sequence[tuple[str, str]],
              body: Mapping[str, Any] | None = None) -> requests.Response:
        self.requests["kick-off"] += 1
        try:
            return self.transport.send(
                "POST" if body is not None else "GET", url, params=list(params) or None,
                what="bulk export kick-off", headers={"Prefer": "respond-async"}, body=body)
        except FhirNotFound as exc:
            raise BulkExportUnsupported(
                "the FHIR server has no $export (kick-off answered 404); it cannot export "
                "in bulk", status=exc.status) from None
        except FhirFatalError as exc:
            if exc.status == 405:
                raise BulkExportUnsupported(
                    "the FHIR server has no $export (kick-off answered 405); it cannot export "
                    "in bulk", status=405) from None
            if isinstance(exc, FhirProtocolError | BulkExportUnsupported):
                raise
            raise BulkExportRefused(f"bulk export kick-off refused: {exc}",
                                    status=exc.status) from None

    def _same_origin(self, url: str, what: str) -> str:
        # Our token goes to the status URL on every poll: only to the FHIR server's origin.
        base, given = urlsplit(self.transport.base_url), urlsplit(url)
        if (given.scheme, given.netloc.lower()) != (base.scheme, base.netloc.lower()):
            raise FhirProtocolError(f"bulk export: the {what} is on {given.netloc}, not the "
                                    "FHIR server")
        return url

    # ------------------------------------------------------------------ status

    def wait(self) -> Manifest:
        """Poll the status URL until the manifest, honouring Retry-After."""
        assert self.status_url is not None, "kick_off first"
        started = self._clock()
        while True:
            self.requests["status"] += 1
            try:
                response = self.transport.send("GET", self.status_url, what="bulk export status",
                                               accept="application/json")
            except FhirTemporaryError:
                raise
            except FhirError as exc:
                raise BulkExportRefused(f"bulk export failed: {exc}", status=exc.status) from None
            if response.status_code == 200:
                self._on_progress("complete")
                try:
                    body = response.json()
                except ValueError:
                    raise FhirProtocolError("bulk export status: the manifest is not JSON") \
                        from None
                return parse_manifest(body)
            if response.status_code != 202:
                raise FhirProtocolError(
                    f"bulk export status: answered {response.status_code}, not 200 or 202")
            self._on_progress(response.headers.get("X-Progress"))
            delay = retries.parse_retry_after(response.headers.get("Retry-After"), time.time())
            delay = min(MAX_POLL_SECONDS, DEFAULT_POLL_SECONDS if delay is None else delay)
            if self._clock() + delay - started > self._timeout:
                raise FhirTemporaryError(
                    f"bulk export: not complete after {self._timeout:.0f} s; given up")
            self._sleep(delay)

    def cancel(self) -> None:
        """DELETE the job (after an interrupt or a failure); a failure to cancel is logged."""
        if self.status_url is None:
            return
        self.requests["delete"] += 1
        try:
            self.transport.send("DELETE", self.status_url, what="bulk export cancel")
        except FhirError as exc:
            log.warning("bulk export: cancelling the job failed: %s", exc)
        self.status_url = None

    # ------------------------------------------------------------------ downloads

    def download(self, item: ExportFile, manifest: Manifest, folder: Path) -> Path:
        """Stream one output file to disk (memory flat whatever its size), retried from the
        start after a broken transfer; BulkDownloadFailed when every attempt failed."""
        target = folder / f"{len(list(folder.iterdir())):05d}.ndjson"
        settings = self.transport.settings
        attempt = 0
        while True:
            self.requests["download"] += 1
            try:
                # The token goes only where the manifest asks for it (files may live on
                # another host, e.g. signed storage URLs).
                response = self.transport.send(
                    "GET", item.url, what=f"bulk export download ({item.type})", accept=NDJSON,
                    authenticate=manifest.requires_access_token)
                written = 0
                with target.open("wb") as out:
                    for chunk in response.iter_content(_CHUNK):
                        out.write(chunk)
                        written += len(chunk)
                self.bytes_downloaded += written
                return target
            except retries.TRANSPORT_ERRORS as exc:
                # Broken while streaming: the client's retries covered only the request.
                error: FhirError = FhirTemporaryError(
                    f"connection broke during the download ({type(exc).__name__})")
            except FhirError as exc:
                error = exc  # the client already retried it as its policy says
                attempt = settings.fhir_max_retries
            if not error.retryable or attempt >= settings.fhir_max_retries:
                raise BulkDownloadFailed(
                    f"bulk export: the {item.type or 'output'} file failed to download "
                    f"({error}); nothing was written", status=error.status) from None
            delay = retries.backoff_delay(attempt, error.retry_after, self._jitter) or 0.0
            attempt += 1
            log.warning("bulk export download: %s; retry %d/%d in %.1f s", error, attempt,
                        settings.fhir_max_retries, delay)
            self._sleep(delay)

    def check_errors(self, manifest: Manifest, folder: Path) -> None:
        """Error files that report an error or fatal issue fail the run: some resources were
        not exported, and a record missing them could be judged wrongly."""
        for item in manifest.error:
            path = self.download(item, manifest, folder)
            for resource in read_ndjson(path):
                if any(i.get("severity") in ("error", "fatal") for i in resource.get("issue") or ()
                       if isinstance(i, Mapping)):
                    # The server's text may quote records: only its first words are kept.
                    detail = (outcome_message(resource) or "no detail")[:120]
                    raise BulkExportRefused(
                        f"bulk export: the server reported resources it could not export "
                        f"({detail}); nothing was written")


def read_ndjson(path: Path) -> Iterator[dict[str, Any]]:
    """The resources of an NDJSON file, one line at a time."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                resource = json.loads(line)
            except (ValueError, RecursionError):
                raise FhirProtocolError(
                    f"bulk export: line {number} of a {path.name} file is not JSON") from None
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                raise FhirProtocolError(
                    f"bulk export: line {number} of an output file is not a FHIR resource")
            yield resource
