"""A pytest plugin that keeps every reason the engine builds while tests run (the shapes test).

Loaded with `-p tests.support.reason_collector`; it wraps CriterionResult's constructor, keeps
the reasons built by service code (not the ones tests write themselves) and writes them, as a
JSON list, to the file REASON_COLLECTOR_OUT names when the session ends.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from service.engine import results

_SEEN: dict[str, None] = {}
_original = results.CriterionResult.__init__


def _built_by_service() -> bool:
    """Whether the caller (past dataclasses.replace) is service code rather than a test."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") == "dataclasses":
        frame = frame.f_back
    return frame is not None and str(frame.f_globals.get("__name__", "")).startswith("service.")


def _collecting_init(self: results.CriterionResult, *args: Any, **kwargs: Any) -> None:
    _original(self, *args, **kwargs)
    if _built_by_service():
        _SEEN.setdefault(self.reason, None)


results.CriterionResult.__init__ = _collecting_init  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("REASON_COLLECTOR_OUT")
    if out:
        Path(out).write_text(json.dumps(sorted(_SEEN), ensure_ascii=False, indent=0))
