"""Fixtures of the reliability tests: the seeded session server, seed clones of each test's
own and the fault proxy in front of the server (fhir_fixtures.py).

Redis and the queue backends come from tests/conftest.py."""

from __future__ import annotations

from fhir_fixtures import population, proxy, seeded_server  # noqa: F401 - fixtures
