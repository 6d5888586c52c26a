"""One patient-record read: a batch of searches, then rounds of next pages, with the caps held;
and the record it gives (each resource once, only this patient's)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from service.fhir import queries as retrieval
from service.fhir.errors import (
    FhirNotFound,
    FhirProtocolError,
    FhirRecordTooLarge,
    failed_outcome,
)
from service.fhir.subjects import belongs_to


class PagingTransport(Protocol):
    """The public transport of a FHIR client that a record read pages with (FhirClient)."""

    base_url: str
    page_size: int

    def batch(self, bundle: Mapping[str, Any]) -> dict[str, Any]: ...

    def get_page(self, url: str, what: str) -> Any: ...

    def next_page_url(self, link: str, what: str) -> str: ...

    def relative_to_base(self, absolute: str) -> str | None: ...

    def entry_error(self, entry: Any, what: str) -> Exception | None: ...

log = logging.getLogger(__name__)


class _UnlinkedPage(FhirProtocolError):
    """A page holds fewer matches than the reported total and has no next link."""


@dataclass(frozen=True)
class _Pending:
    """A page still to fetch: its search label, absolute URL, and whether to GET it alone."""

    label: str
    url: str
    alone: bool = False


@dataclass
class _SearchState:
    """Progress of one search of the record across pages."""

    label: str
    pages: int = 0
    matched: int = 0
    total: int | None = None
    seen: set[tuple[str, str]] = field(default_factory=set)
    found: list[dict[str, Any]] = field(default_factory=list)

    def snapshot(self) -> _SearchState:
        return _SearchState(self.label, self.pages, self.matched, self.total, set(self.seen),
                            list(self.found))


class RecordRead:
    """The paging state of one record read: each search's progress and the resource count.

    Made per read (never shared between threads); the client it uses is thread-safe.
    """

    def __init__(
        self,
        client: PagingTransport,
        queries: Sequence[retrieval.Query],
        *,
        max_pages: int,
        max_resources: int,
    ) -> None:
        labels = [q.label for q in queries]
        if len(set(labels)) != len(labels):
            raise ValueError("query labels must be unique")
        self.client = client
        self.max_pages = max_pages  # FHIR_MAX_PAGES: pages per search
        self.max_resources = max_resources  # FHIR_MAX_RESOURCES: resources per record
        self.queries = list(queries)
        self.states = {q.label: _SearchState(q.label) for q in queries}
        self.resource_count = 0

    @property
    def results(self) -> dict[str, list[dict[str, Any]]]:
        return {label: state.found for label, state in self.states.items()}

    def run(self) -> dict[str, list[dict[str, Any]]]:
        """Every query's resources, every page followed, or an error: never a partial record."""
        if not self.queries:
            return {}
        pending = self._first_round()
        asked_medications: set[str] = set()
        while True:
            missing = [
                m
                for m in retrieval.medication_ids_missing(
                    r for state in self.states.values() for r in state.found
                )
                if m not in asked_medications
            ]
            if missing and not any(p.label == "Medication" for p in pending):
                asked_medications.update(missing)
                query = retrieval.medication_query(missing, self.client.page_size)
                self.states.setdefault("Medication", _SearchState("Medication"))
                pending.append(_Pending("Medication", f"{self.client.base_url}/{query.url}"))
            if not pending:
                return self.results
            pending = self._next_round(pending)

    def _first_round(self) -> list[_Pending]:
        answer = self.client.batch(retrieval.batch_bundle(q.url for q in self.queries))
        pending: list[_Pending] = []
        for query, entry in zip(self.queries, answer["entry"], strict=True):
            what = f"read {query.label}" if "?" not in query.url else f"search {query.label}"
            error = self.client.entry_error(entry, what)
            if error is not None:
                if isinstance(error, FhirNotFound) and query.label == "Patient":
                    raise FhirNotFound(f"{query.url} not found", status=error.status)
                raise error
            resource = entry.get("resource")
            if "?" not in query.url:
                if not isinstance(resource, dict):
                    raise FhirProtocolError(f"{what}: the answer has no resource")
                self.states[query.label].found.append(resource)
                continue
            url = f"{self.client.base_url}/{query.url}"
            pending.extend(self._take_page(query.label, url, resource))
        return pending

    def _take_page(self, label: str, url: str, bundle: Any, *, in_batch: bool = True
                   ) -> list[_Pending]:
        """Add one page's resources; return what still has to be fetched for this search."""
        what = f"search {label}"
        before = (self.states[label].snapshot(), self.resource_count)
        try:
            next_link = self._page(self.states[label], bundle, what)
        except _UnlinkedPage:
            if not in_batch:
                raise
            # Some servers page top-level searches but not searches inside a batch: forget
            # this page and fetch the same URL on its own, where next links are given.
            self.states[label], self.resource_count = before
            log.info("%s: capped inside a batch without a next link; fetching it alone", what)
            return [_Pending(label, url, alone=True)]
        if next_link:
            return [_Pending(label, self.client.next_page_url(next_link, what))]
        return []

    def page(self, label: str, bundle: Any, what: str) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a streamed search (FhirClient.search): its new resources and next link."""
        state = self.states.setdefault(label, _SearchState(label))
        state.found = []  # a stream keeps no pages behind it: only `seen` grows
        next_link = self._page(state, bundle, what)
        return state.found, next_link

    def _page(self, state: _SearchState, bundle: Any, what: str) -> str | None:
        """Take one searchset page's resources into state; its next link, caps enforced."""
        _check_searchset(bundle, what)
        state.pages += 1
        if state.pages > self.max_pages:
            raise FhirRecordTooLarge(
                f"{what}: more than {self.max_pages} pages (FHIR_MAX_PAGES)"
            )
        if state.total is None and isinstance(bundle.get("total"), int):
            state.total = bundle["total"]
        for entry in bundle.get("entry") or ():
            self._take_entry(state, entry, what)
        next_link = _next_link(bundle)
        if next_link is None and state.total is not None and state.matched < state.total:
            # A server that caps _count without a next link would silently drop data.
            raise _UnlinkedPage(
                f"{what}: the server reported {state.total} matches but returned "
                f"{state.matched} and no next link"
            )
        return next_link

    def _take_entry(self, state: _SearchState, entry: Any, what: str) -> None:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        response = entry.get("response") if isinstance(entry, dict) else None
        if failed_outcome(resource) or (
                isinstance(response, dict) and failed_outcome(response.get("outcome"))):
            # The search did not run: its page is no "no data". The server's text may quote
            # records, so only that it failed is said.
            raise FhirProtocolError(
                f"{what}: the answer carries an error OperationOutcome (the search failed)"
            )
        if not isinstance(resource, dict):
            return
        mode = (entry.get("search") or {}).get("mode")
        if mode == "outcome" or resource.get("resourceType") == "OperationOutcome":
            return  # server warnings about the search, not record data
        if mode != "include":
            state.matched += 1
        key = (str(resource.get("resourceType")), str(resource.get("id")))
        if key in state.seen:
            return  # _include'd resources repeat across pages
        state.seen.add(key)
        self.resource_count += 1
        if self.resource_count > self.max_resources:
            raise FhirRecordTooLarge(
                f"{what}: more than {self.max_resources} resources "
                "(FHIR_MAX_RESOURCES)"
            )
        state.found.append(resource)

    def _next_round(self, pending: list[_Pending]) -> list[_Pending]:
        """Fetch every pending page in one request if possible; return what is still pending."""
        batchable = [
            (p, rel)
            for p in pending
            if not p.alone and (rel := self.client.relative_to_base(p.url)) is not None
        ]
        if len(batchable) < 2:
            batchable = []
        in_batch = {id(p) for p, _ in batchable}
        still: list[_Pending] = []
        if batchable:
            answer = self.client.batch(retrieval.batch_bundle(rel for _, rel in batchable))
            for (item, _), entry in zip(batchable, answer["entry"], strict=True):
                if self.client.entry_error(entry, f"search {item.label}") is None:
                    still.extend(self._take_page(item.label, item.url, entry.get("resource")))
                else:
                    # Some servers cannot page inside a batch; the plain GET either works or
                    # raises the real error.
                    log.info(
                        "search %s: a page failed inside a batch, fetching it alone", item.label
                    )
                    still.append(_Pending(item.label, item.url, alone=True))
        for item in pending:
            if id(item) in in_batch:
                continue
            bundle = self.client.get_page(item.url, f"search {item.label}")
            still.extend(self._take_page(item.label, item.url, bundle, in_batch=False))
        return still


def _check_searchset(bundle: Any, what: str) -> None:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirProtocolError(f"{what}: a search answer is not a Bundle")
    if bundle.get("type") != "searchset":
        raise FhirProtocolError(f"{what}: a search answer is a {bundle.get('type')!r} Bundle")


def _next_link(bundle: dict[str, Any]) -> str | None:
    next_link = None
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            next_link = str(link["url"])
    return next_link


_WRITE_BACK_LABELS = frozenset({"ResearchSubject", "ResearchStudy"})


def record_resources(
    results: Mapping[str, list[dict[str, Any]]],
    patient_id: str | None = None,
    base_url: str | None = None,
) -> list[dict[str, Any]]:
    """The clinical record from run_queries' results: Patient first, each resource once.

    With patient_id, only resources about that patient are kept (subject relative, or
    absolute on base_url): a server answering with another patient's resources, or with
    resources naming no patient, never has them used for this one.
    """
    seen: set[tuple[str, str]] = set()
    record: list[dict[str, Any]] = []
    order = ["Patient", *(label for label in results if label != "Patient")]
    for label in order:
        if label in _WRITE_BACK_LABELS:
            continue
        for resource in results.get(label, ()):
            key = (str(resource.get("resourceType")), str(resource.get("id")))
            if key in seen:
                continue
            if patient_id is not None and not belongs_to(resource, patient_id, base_url):
                continue
            seen.add(key)
            record.append(resource)
    return record
