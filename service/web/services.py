"""The per-app dependencies (settings, screener, queue, FHIR client factory, clock) views reach."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from service.core.clock import Clock
from service.core.settings import Settings
from service.fhir.api import ClientFactory
from service.queue.jobs import JobQueue
from service.usecases.screener import ScreeningService


@dataclass
class Services:
    """What create_app wired together; tests swap any of them."""

    settings: Settings
    screener: ScreeningService
    queue: JobQueue
    client_factory: ClientFactory
    cds_verifier: Any = None
    clock: Clock = field(default_factory=Clock)  # the one that decides "today"


def services() -> Services:
    """The Services of the app handling the current request."""
    return current_app.extensions["eligibility"]
