"""Fixtures of the FHIR client tests: settings and a client whose backoff never sleeps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from service.core.settings import Settings
from service.fhir.client import FhirClient
from tests.support.fhir_testkit import BASE, FakeClock, RecordingSession


@pytest.fixture
def settings() -> Settings:
    return Settings(fhir_base_url=BASE, fhir_max_retries=3, fhir_timeout=7.5, fhir_page_size=500)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(
    sleeps: list[float], clock: FakeClock
) -> Callable[..., tuple[FhirClient, RecordingSession]]:
    """Build a client whose backoff sleeps are recorded instead of slept (jitter fixed at 1)."""

    def build(settings: Settings, **kwargs: Any) -> tuple[FhirClient, RecordingSession]:
        session = RecordingSession()
        client = FhirClient(
            settings, session, sleep=sleeps.append, clock=clock, jitter=lambda: 1.0, **kwargs
        )
        return client, session

    return build


@pytest.fixture
def fhir(
    settings: Settings, make_client: Callable[..., tuple[FhirClient, RecordingSession]]
) -> FhirClient:
    """A FhirClient over a recording session (one name per kind of client: `http` is Flask's)."""
    return make_client(settings)[0]
