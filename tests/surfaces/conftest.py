"""Fixtures of the surfaces tests: settings with a queue of the test's own, an app with fakes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from surfaces_fakes import FakeClient, FakeScreener

from service.app import create_app
from service.jobs import JobQueue
from service.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings().with_overrides(
        queue_url=f"sqlite:///{tmp_path / 'queue.sqlite'}",
        coalesce_seconds=0.0,
        public_url="https://elig.example.org",
    )


@pytest.fixture
def make_app(settings: Settings) -> Iterator[Callable[..., Any]]:
    """make_app(**setting_overrides) -> (app, screener); the app's queue has no workers."""
    queues: list[JobQueue] = []

    def _make(*, screener: FakeScreener | None = None, fhir_up: bool = True,
              client_factory: Any = None, **overrides: Any) -> tuple[Any, FakeScreener]:
        s = settings.with_overrides(**overrides) if overrides else settings
        screener = screener or FakeScreener(s)
        factory = client_factory or (lambda cs: FakeClient(cs, up=fhir_up))
        app = create_app(s, screener=screener, client_factory=factory)
        queues.append(app.extensions["eligibility"].queue)
        return app, screener

    yield _make
    for queue in queues:
        queue.stop()


@pytest.fixture
def client(make_app: Callable[..., Any]) -> Any:
    app, _ = make_app()
    return app.test_client()

