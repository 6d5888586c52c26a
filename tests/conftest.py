"""Shared fixtures: the local FHIR server, settings pointing at it, and the `live` marker."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localfhir import LocalFhirError, LocalServer, NodeNotFoundError, start_local_server
from service.core.settings import Settings
from service.mappings import Mappings
from tests.support import hapi_server as hapi_support
from tests.support.apps import MakeApp, app_factory
from tests.support.ci import unavailable
from tests.support.fakes import real_mappings
from tests.support.fhir_fixtures import population, proxy, seeded_server  # noqa: F401 - fixtures
from tests.support.ids import ascii_id

# `oidc_provider`: a real OpenID provider per test (tests/support/oidc/), for SMART and sign-in.
pytest_plugins = ("tests.support.oidc_provider",)

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
        fhir_base_url=base_url, queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
        users_db=tmp_path / "users.sqlite",
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
        if "hapi_server" in fixtures:
            item.add_marker(pytest.mark.hapi)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a `live` test unless the sandbox answered (checked once per session)."""
    if item.get_closest_marker("live"):
        reason = _live_server_reason()
        if reason:
            pytest.skip(reason)


# ------------------------------------------------------------------------------ redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server (Debian's binary) on a free loopback port, or skip (fail in CI)."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    import redis

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path_factory.mktemp("redis"))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    conn = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            conn.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                unavailable("redis-server did not start")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(params=["sqlite", "redis"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each queue backend in turn: a SQLite file, then an emptied Redis database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.sqlite'}"
    url = request.getfixturevalue("redis_url")
    import redis

    redis.Redis.from_url(url).flushdb()
    return url


# ------------------------------------------------------------------ the app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Service settings with a queue of the test's own (no FHIR server: pair with fakes)."""
    return Settings().with_overrides(
        queue_url=f"sqlite:///{tmp_path / 'queue.sqlite'}",
        coalesce_seconds=0.0,
        public_url="https://elig.example.org",
        users_db=tmp_path / "users.sqlite",
    )


@pytest.fixture(scope="session")
def mappings() -> Mappings:
    """The repository's mappings (mappings/), loaded once: the one fixture every test shares
    (modules testing other mapping folders override it)."""
    return real_mappings()


@pytest.fixture
def make_app(settings: Settings) -> Iterator[MakeApp]:
    """The one way tests build the app (tests/support/apps.py); queues stopped at teardown.

    make_app(**setting_overrides) -> (app, screener) with an in-memory fake screener and FHIR
    client (no server). make_app(base_settings, **overrides) builds the real screener and FHIR
    client from those settings (a local FHIR server, a fault proxy, a mocked URL).
    """
    with app_factory(settings) as make:
        yield make


@pytest.fixture
def http(make_app: Callable[..., Any]) -> Any:
    """The Flask test client of an app built by make_app() with its defaults."""
    app, _ = make_app()
    return app.test_client()


# ------------------------------------------------------------------------------ HAPI


def pytest_collection_finish(session: pytest.Session) -> None:
    """When `hapi` tests were selected, build hapi/ and launch HAPI before the first test.

    Here the build (minutes on a fresh machine: Maven downloads HAPI) counts against no test's
    timeout, and HAPI starts while the tests before the `hapi` ones run.
    """
    if session.config.option.collectonly or hapi_support.missing_tools():
        return
    if any(item.get_closest_marker("hapi") for item in session.items):
        try:
            hapi_support.build()
            session.config.stash[_HAPI_LAUNCHED] = hapi_support.launch()
        except hapi_support.HapiError as exc:
            session.config.stash[_HAPI_BUILD_ERROR] = str(exc)


_HAPI_BUILD_ERROR = pytest.StashKey[str]()
_HAPI_LAUNCHED = pytest.StashKey[hapi_support.HapiServer]()


@pytest.fixture(scope="session")
def hapi_server(request: pytest.FixtureRequest) -> Iterator[hapi_support.HapiServer]:
    """HAPI FHIR JPA R4 8.4.0 (hapi/) on a free loopback port, shared by the session.

    Skips where Java or Maven is missing, except in CI, which must run the `hapi` tier.
    """
    reason = hapi_support.missing_tools()
    if reason:
        if IN_CI:
            pytest.fail(f"CI must run the hapi tests but: {reason}", pytrace=False)
        pytest.skip(reason)
    build_error = request.config.stash.get(_HAPI_BUILD_ERROR, None)
    if build_error:
        pytest.fail(build_error, pytrace=False)
    try:
        server = request.config.stash.get(_HAPI_LAUNCHED, None)
        if server is None:
            hapi_support.build()
            server = hapi_support.launch()
        server.wait_ready()
    except hapi_support.HapiError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def hapi_base_url(hapi_server: hapi_support.HapiServer) -> str:
    """Base URL of the session's HAPI server, e.g. http://127.0.0.1:41234/fhir."""
    return hapi_server.base_url


@pytest.fixture(scope="session")
def hapi_seeded(hapi_base_url: str) -> dict[str, Any]:
    """The seeds loaded once into the session's HAPI: {"base_url", "studies", "patients"}."""
    from service.core.settings import REPO_ROOT
    from service.fhir.client import FhirClient
    from service.mappings import load_mappings
    from service.usecases.seeding import load_seeds

    settings = Settings().with_overrides(fhir_base_url=hapi_base_url, queue_url="memory://")
    with FhirClient(settings) as fhir:
        report = load_seeds(fhir, REPO_ROOT / "seeds",
                            mappings=load_mappings(settings.mappings_dir))
    return {"base_url": hapi_base_url, "studies": dict(report.studies),
            "patients": list(report.patients)}



def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """Parameter ids in ASCII (tests/support/ids.py says why)."""
    return ascii_id(val) if isinstance(val, str) and not val.isascii() else None
