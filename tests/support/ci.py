"""What a test needs but this machine lacks: skipped on a developer's machine, a failure in CI.

CI (`CI=true`, set by .ci/run) must run every tier, so a missing redis-server, Node package or
shared file there is a red run, not a silent skip that hides the guarantee it tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
# Developers and CI both have shared/ (FHIR corpus, spec) beside the repository. .ci/run sets
# SHARED_OPTIONAL=1 only when it finds no shared/ there at all (a clone on its own), and says so.
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SHARED_OPTIONAL = os.environ.get("SHARED_OPTIONAL", "") == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip saying why, except in CI, where the test fails saying why."""
    if IN_CI:
        pytest.fail(f"CI must run this test but {reason}", pytrace=False)
    pytest.skip(reason)


def shared_file(relative: str) -> Path:
    """`shared/<relative>`, or skip (fail in CI unless shared/ is absent altogether) saying why."""
    path = SHARED / relative
    if not path.exists():
        reason = f"{path} not found"
        if SHARED_OPTIONAL:
            pytest.skip(f"{reason} (no shared/ beside this clone)")
        unavailable(reason)
    return path
