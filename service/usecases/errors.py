"""What a use case answers when it refuses a request; the surface renders it, nothing written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def N_(message: str) -> str:
    """Marks a message for the pages' catalogue (babel.cfg); the surface translates it."""
    return message


class Refused(ValueError):
    """The request names something unknown or not allowed; its message is for the person."""


class StaleRecord(Exception):
    """The record changed since the person saw it: nothing was overwritten.

    `current` is the stored resource now (the surface shows who changed what).
    """

    def __init__(self, current: Mapping[str, Any]) -> None:
        super().__init__("the record changed since it was shown")
        self.current = current
