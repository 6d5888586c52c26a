"""Shared fixtures: the local FHIR server, settings pointing at it, and the `live` marker."""

from __future__ import annotations

import functools
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from localfhir import LocalFhirError, LocalServer, NodeNotFoundError, start_local_server
from service.settings import Settings

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
LIVE_SWITCH = "LIVE_FHIR_TESTS"
LIVE_BASE_URL = os.environ.get("LIVE_FHIR_BASE_URL", "https://hapi.fhir.org/baseR4").rstrip("/")


def _start_or_skip() -> LocalServer:
    try:
        return start_local_server()
    except NodeNotFoundError as exc:
        if IN_CI:
            pytest.fail(f"CI must run the integration tests but: {exc}", pytrace=False)
        pytest.skip(f"local FHIR server unavailable: {exc}")
    except LocalFhirError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[LocalServer]:
    """The session's local FHIR server (empty at start; tests share it, so use unique ids)."""
    server = _start_or_skip()
    yield server
    server.stop()


@pytest.fixture
def fresh_fhir_server() -> Iterator[LocalServer]:
    """A local FHIR server of the test's own, for tests that need an empty server (~1 s)."""
    server = _start_or_skip()
    yield server
    server.stop()


def _settings_for(base_url: str, tmp_path: Path) -> Settings:
    return Settings().with_overrides(
        fhir_base_url=base_url, queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}"
    )


@pytest.fixture
def fhir_settings(fhir_server: LocalServer, tmp_path: Path) -> Settings:
    """Settings pointing at the session's local FHIR server, with a queue of the test's own."""
    return _settings_for(fhir_server.base_url, tmp_path)


@pytest.fixture
def live_fhir_settings(tmp_path: Path) -> Settings:
    """Settings pointing at the public HAPI sandbox (for tests marked `live`)."""
    return _settings_for(LIVE_BASE_URL, tmp_path)


@functools.cache
def _live_server_reason() -> str | None:
    # Opt-in: the sandbox is a public third-party server, so no test run reaches out unasked.
    if os.environ.get(LIVE_SWITCH, "").strip().lower() not in ("1", "true", "yes"):
        return f"live tests run only with {LIVE_SWITCH}=1"
    try:
        with urllib.request.urlopen(f"{LIVE_BASE_URL}/metadata", timeout=5) as response:
            if response.status == 200:
                return None
            return f"{LIVE_BASE_URL}/metadata answered {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{LIVE_BASE_URL}/metadata did not answer within 5 s: {exc}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses a local FHIR server `integration` (select with -m)."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "fhir_server" in fixtures or "fresh_fhir_server" in fixtures:
            item.add_marker(pytest.mark.integration)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a `live` test unless the sandbox answered (checked once per session)."""
    if item.get_closest_marker("live"):
        reason = _live_server_reason()
        if reason:
            pytest.skip(reason)
