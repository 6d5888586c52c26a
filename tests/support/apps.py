"""The one way tests build the app, for any fixture scope: the apps' queues stop at exit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from service.core.settings import Settings
from service.web.app import create_app
from tests.support.fakes import FakeClient, FakeScreener

MakeApp = Callable[..., tuple[Any, Any]]


@contextmanager
def app_factory(default: Settings) -> Iterator[MakeApp]:
    """make(**setting_overrides) -> (app, screener) with an in-memory fake screener and FHIR
    client (no server); make(base_settings, **overrides) builds the real screener and FHIR
    client from those settings (a local FHIR server, a fault proxy, a mocked URL).

    The root conftest's `make_app` fixture is this per test; module-scoped fixtures (the
    page workspace) enter it themselves.
    """
    queues: list[Any] = []

    def make(base: Settings | None = None, *, screener: FakeScreener | None = None,
             fhir_up: bool = True, client_factory: Any = None,
             **overrides: Any) -> tuple[Any, Any]:
        s = base if base is not None else default
        s = s.with_overrides(**overrides) if overrides else s
        if base is None:
            screener = screener or FakeScreener(s)
            client_factory = client_factory or (lambda cs: FakeClient(cs, up=fhir_up))
        app = create_app(s, screener=screener, client_factory=client_factory)
        queues.append(app.extensions["eligibility"].queue)
        return app, app.extensions["eligibility"].screener

    try:
        yield make
    finally:
        for queue in queues:
            queue.stop()
