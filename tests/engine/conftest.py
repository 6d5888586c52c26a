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


RuleCheck = Callable[..., CriterionResult]


@pytest.fixture(scope="session")
def every_study_mappings() -> Mappings:
    """The repository's mappings with the example trials and the conformance study."""
    from service.mappings import load_mappings
    return load_mappings(":".join(str(REPO / "mappings" / d)
                                  for d in (".", "examples", "conformance")))


@pytest.fixture(scope="session")
def rule_check(every_study_mappings: Mappings) -> RuleCheck:
    """rule_check(rule, params, resources, as_of=AS_OF, type="inclusion") -> CriterionResult.

    One criterion of `rule` with `params` as a mapping file writes them (parsed and
    cross-checked by the rule's declarations), decided for a patient with `resources`: a rule
    at parameters no study of the repository uses (every operator, every option).
    """
    from types import MappingProxyType

    from service.engine.context import Context
    from service.engine.decide import decide
    from service.engine.model import CriterionMapping
    from service.engine.record import build_record
    from service.engine.registry import RULES
    from tests.support.builders import birth_for, patient

    mappings = every_study_mappings

    def run(rule: str, params: dict[str, Any], resources: list[dict[str, Any]], *,
            as_of: date = AS_OF, type: str = "inclusion") -> CriterionResult:
        spec = RULES[rule]
        parsed = {k: spec.params[k].parse(v, mappings.concepts) for k, v in params.items()}
        assert spec.check(parsed) is None
        crit = CriterionMapping(id="under-test", text="the rule under test", rule=rule,
                                kind="automatic", type=type,  # type: ignore[arg-type]
                                params=MappingProxyType(parsed), source="test")
        if not any(r.get("resourceType") == "Patient" for r in resources):
            resources = [patient(birth_for(30), "female"), *resources]
        record = build_record(resources, mappings)
        found = decide(Context(record=record, mappings=mappings, as_of=as_of, study="test"),
                       crit)
        refs = {f"{r['resourceType']}/{r.get('id')}" for r in resources}
        assert found.result in RESULTS and len(found.reason.strip()) > 10, found
        assert set(found.evidence) <= refs, found.evidence
        return found
    return run
