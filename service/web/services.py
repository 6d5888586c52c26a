"""The per-app dependencies (settings, screener, queue, FHIR client factory) views reach."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app

from service.queue.jobs import JobQueue
from service.settings import Settings


@dataclass
class Services:
    """What create_app wired together; tests swap any of them."""

    settings: Settings
    screener: Any
    queue: JobQueue
    client_factory: Callable[[Settings], Any]
    cds_verifier: Any = None


def services() -> Services:
    """The Services of the app handling the current request."""
    return current_app.extensions["eligibility"]
