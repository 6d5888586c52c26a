"""Fixtures of the engine tests: the repository's mappings and one-call evaluators.

Every evaluation goes through `check_invariants`, so each test also checks what docs/decisions.md
requires of every result: a known result, a reason sentence, and evidence that points at
resources of the record.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from service.engine.evaluate import evaluate_patient
from service.engine.results import RESULTS, STATUSES, CriterionResult, StudyResult
from service.mappings import Mappings
from tests.support.builders import AS_OF

REPO = Path(__file__).resolve().parents[2]

Evaluate = Callable[..., StudyResult]
Criterion = Callable[..., CriterionResult]


def check_invariants(result: StudyResult, resources: list[dict[str, Any]]) -> None:
    """What every criterion result must carry, whatever the record (docs/decisions.md)."""
    refs = {f"{r['resourceType']}/{r.get('id')}" for r in resources}
    assert result.status in STATUSES
    for c in result.criteria:
        assert c.result in RESULTS, c
        assert isinstance(c.reason, str) and len(c.reason.strip()) > 10, c
        for ref in c.evidence:
            assert ref in refs, f"{c.id}: evidence {ref} is not a resource of the record"


@pytest.fixture(scope="session")
def study(mappings: Mappings) -> Evaluate:
    """study(resources, key, as_of=AS_OF) -> the StudyResult, evaluated strictly."""
    def run(resources: list[dict[str, Any]], key: str, as_of: date = AS_OF) -> StudyResult:
        evaluation = evaluate_patient(resources, mappings, as_of, [key], strict=True)
        assert [s.study for s in evaluation.studies] == [key]
        check_invariants(evaluation.studies[0], resources)
        return evaluation.studies[0]
    return run


@pytest.fixture(scope="session")
def crit(study: Evaluate) -> Criterion:
    """crit(resources, key, criterion_id, as_of=AS_OF) -> that criterion's result."""
    def run(resources: list[dict[str, Any]], key: str, cid: str, as_of: date = AS_OF
            ) -> CriterionResult:
        found = [c for c in study(resources, key, as_of).criteria if c.id == cid]
        assert len(found) == 1, f"{key} has no single criterion {cid!r}"
        return found[0]
    return run
