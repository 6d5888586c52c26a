"""The seam between use cases and the FHIR server: what a client must do, and its factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from service.core.settings import Settings
from service.fhir import queries as retrieval


class FhirApi(Protocol):
    """What the use cases need of a FHIR client: FhirClient, or a test's fake.

    It carries no settings: what a use case needs besides the server (the SLEDAI-2K window,
    the seeds) is passed to the use case explicitly.
    """

    base_url: str  # the FHIR base, no trailing slash: resources "about this patient" live here
    page_size: int  # the _count of the searches built for this server

    def capabilities(self) -> dict[str, Any]: ...

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]: ...

    def search(
        self,
        resource_type: str,
        params: Mapping[str, Any] | Sequence[tuple[str, str]] | None = None,
    ) -> Iterator[dict[str, Any]]: ...

    def batch(self, bundle: Mapping[str, Any]) -> dict[str, Any]: ...

    def transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]: ...

    def run_queries(
        self, queries: Sequence[retrieval.Query]
    ) -> dict[str, list[dict[str, Any]]]: ...


# The seam where tests swap the FHIR client (settings in, a client out).
ClientFactory = Callable[[Settings], FhirApi]


