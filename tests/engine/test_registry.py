"""The one rule registry: every rule declares its parameters, bounds and concept kinds."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import pytest

from service.engine.model import Concept
from service.engine.registry import MAX_DAYS, Param, ParamError, rule
from service.engine.rules import RULES

ENGINE = Path(__file__).resolve().parents[2] / "service" / "engine"
CONCEPTS = {
    "hb": Concept(name="hb", kind="observation", codes=frozenset(), unit="g/L"),
    "ana": Concept(name="ana", kind="observation", codes=frozenset()),
    "sle": Concept(name="sle", kind="condition", codes=frozenset()),
}


def test_the_engine_imports_nothing_of_service_outside_itself():
    for path in ENGINE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name == "service" or name.startswith("service."):
                    assert name.startswith("service.engine"), f"{path.name} imports {name}"
                assert not name.startswith(("flask", "requests")), f"{path.name}: {name}"


def test_every_rule_module_stays_small():
    for path in ENGINE.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_declares_typed_bounded_parameters(name):
    spec = RULES[name]
    assert spec.evaluate is not None and spec.name == name
    for key, param in spec.params.items():
        assert isinstance(param, Param), key
        if param.type in ("concept", "concepts", "agents"):
            assert param.kinds, f"{name}.{key} accepts concepts of any kind"
        if param.type in ("int", "decimal", "pairs"):
            assert param.minimum is not None or param.positive, f"{name}.{key} has no lower bound"
        if param.type in ("int", "pairs"):
            # Counts, days, years and scores have an upper bound; a decimal limit on a
            # measurement is bounded above only by what the measured quantity can be.
            assert param.maximum is not None, f"{name}.{key} has no upper bound"


@pytest.mark.parametrize(("param", "value", "parsed"), [
    (Param("int", minimum=1, maximum=10), 1, 1),
    (Param("int", minimum=1, maximum=10), 10, 10),
    (Param("decimal", minimum=0, maximum=5), "0", Decimal(0)),
    (Param("decimal", minimum=0, maximum=5), 5, Decimal(5)),
    (Param("decimal", positive=True, maximum=5), "0.001", Decimal("0.001")),
    (Param("str", choices=(">=", "<")), ">=", ">="),
    (Param("concept", kinds=("observation",)), "ana", "ana"),
    (Param("concept", kinds=("observation",), needs_unit=True), "hb", "hb"),
    (Param("concepts", kinds=("observation", "condition")), ["hb", "sle"], ("hb", "sle")),
    (Param("pairs", minimum=0, maximum=100), [[0, 5], [100, 0]],
     ((Decimal(0), Decimal(5)), (Decimal(100), Decimal(0)))),
])
def test_a_parameter_inside_its_declaration_is_parsed(param, value, parsed):
    assert param.parse(value, CONCEPTS) == parsed


@pytest.mark.parametrize(("param", "value", "message"), [
    (Param("int", minimum=1, maximum=10), 0, "below the minimum 1"),
    (Param("int", minimum=1, maximum=10), 11, "above the maximum 10"),
    (Param("int", minimum=0, maximum=MAX_DAYS), True, "expected an integer"),
    (Param("int", minimum=0, maximum=MAX_DAYS), "5", "expected an integer"),
    (Param("decimal", minimum=0, maximum=5), "-0.1", "below the minimum 0"),
    (Param("decimal", minimum=0, maximum=5), "NaN", "not a finite number"),
    (Param("decimal", minimum=0, maximum=5), "five", "not a number"),
    (Param("decimal", positive=True, maximum=5), 0, "must be above 0"),
    (Param("str", choices=(">=", "<")), "=>", "must be one of >=, <"),
    (Param("concept", kinds=("observation",)), "nope", "unknown concept 'nope'"),
    (Param("concept", kinds=("observation",)), "sle", "'sle' is a condition"),
    (Param("concept", kinds=("observation",), needs_unit=True), "ana", "no canonical unit"),
    (Param("concepts", kinds=("observation",)), [], "non-empty list"),
    (Param("agents", kinds=("observation",)), [{"name": "x", "concepts": []}], "non-empty"),
    (Param("pairs", minimum=0, maximum=100), [[0, 101]], "above the maximum 100"),
])
def test_a_parameter_outside_its_declaration_is_refused(param, value, message):
    with pytest.raises(ParamError, match=message):
        param.parse(value, CONCEPTS)


def test_a_rule_name_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="registered twice"):
        rule("age")(RULES["age"].evaluate)


def test_a_declared_concept_kind_must_exist():
    with pytest.raises(ValueError, match="unknown concept kind"):
        rule("never-registered", {"c": Param("concept", kinds=("diagnosis",))})
