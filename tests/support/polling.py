"""Poll a condition in tests that wait on background work (workers, queues, servers)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll until predicate() is truthy and return its value; fail after a generous deadline.

    Not a timing assertion: the deadline only stops a test that would otherwise hang.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what or predicate}")
        time.sleep(0.05)
