"""FHIR fixtures shared by the reliability and security tests (their conftests import them):
the seeded session server, seed clones of each test's own, and the fault proxy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localfhir import LocalServer
from service.core.settings import Settings
from service.fhir.client import FhirClient
from service.usecases.seeding import load_seeds
from tests.support.fault_proxy import FaultProxy
from tests.support.seed_population import SEEDS_DIR, Population, mappings


@pytest.fixture(scope="session")
def seeded_server(fhir_server: LocalServer) -> LocalServer:
    """The session's FHIR server with the seed studies and patients loaded (idempotent)."""
    settings = Settings().with_overrides(fhir_base_url=fhir_server.base_url)
    with FhirClient(settings) as client:
        load_seeds(client, SEEDS_DIR, mappings=mappings())
    return fhir_server


@pytest.fixture
def population(seeded_server: LocalServer) -> Population:
    """Add seed clones with ids of the test's own to the session server."""
    return Population(seeded_server.base_url)


@pytest.fixture
def proxy(seeded_server: LocalServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of the seeded session server (no faults until injected)."""
    with FaultProxy(seeded_server.base_url) as running:
        yield running
