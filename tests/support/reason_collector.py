"""A pytest plugin that keeps every reason the engine builds while tests run (the shapes test).

Loaded with `-p tests.support.reason_collector`; it wraps the constructors of CriterionResult
and of the worksheets' lab Finding (both shown through the pages' reason filter), keeps the
reasons built by service code (not the ones tests write themselves) and writes them, as a JSON
list, to the file REASON_COLLECTOR_OUT names when the session ends.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from service.engine import results, sledai_labs

_SEEN: dict[str, None] = {}


def _built_by_service() -> bool:
    """Whether the caller (past dataclasses.replace) is service code rather than a test."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") == "dataclasses":
        frame = frame.f_back
    return frame is not None and str(frame.f_globals.get("__name__", "")).startswith("service.")


def _collecting(cls: Any) -> None:
    original = cls.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if _built_by_service():
            _SEEN.setdefault(self.reason, None)

    cls.__init__ = init


_collecting(results.CriterionResult)
_collecting(sledai_labs.Finding)


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("REASON_COLLECTOR_OUT")
    if out:
        Path(out).write_text(json.dumps(sorted(_SEEN), ensure_ascii=False, indent=0))
