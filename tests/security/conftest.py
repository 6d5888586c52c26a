"""Fixtures of the security tests: the seeded session server, seed clones and the counting
fault proxy, shared with tests/reliability (its helper modules are put on the import path)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reliability"))

from fhir_fixtures import population, proxy, seeded_server  # noqa: E402, F401 - fixtures
