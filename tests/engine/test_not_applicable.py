"""A criterion that does not apply to the patient is met as not applicable, keeping its type."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from service.engine.context import Context
from service.engine.decide import decide
from service.engine.model import Applicability, CriterionMapping
from service.engine.record import build_record
from tests.support.builders import AS_OF, birth_for, patient


@pytest.mark.parametrize("ctype", ["inclusion", "exclusion"])
def test_a_criterion_for_males_is_not_applicable_to_a_female(every_study_mappings, ctype):
    crit = CriterionMapping(id="c", text="t", rule="manual", kind="manual", type=ctype,
                            params=MappingProxyType({}), source="test",
                            applies=Applicability(sex="male"))
    record = build_record([patient(birth_for(12), "female")], every_study_mappings, "p1")
    found = decide(Context(record=record, mappings=every_study_mappings, as_of=AS_OF,
                           study="s"), crit)
    assert (found.result, found.type, found.reason, found.evidence) == (
        "met", ctype, "Not applicable: the patient is female (applies to males only).",
        ("Patient/p1",))
