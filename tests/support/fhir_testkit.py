"""Helpers of the FHIR tests: HAPI-shaped fixture loader, recording session, fake clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

HAPI_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "hapi"
BASE = "http://hapi.test/baseR4"


def hapi(name: str) -> Any:
    """A HAPI-shaped fixture: parsed JSON, or text for non-JSON files."""
    path = HAPI_DIR / name
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else text


class RecordingSession(requests.Session):
    """A Session remembering the keyword arguments of every request (timeouts, redirects)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls.append({"method": method, "url": url, **kwargs})
        return super().request(method, url, *args, **kwargs)


class FakeClock:
    """A settable time source, so token expiry and Retry-After dates need no waiting."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
