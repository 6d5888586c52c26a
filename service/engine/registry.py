"""The one rule registry: each rule's evaluator with its declared parameters, bounds and kinds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Literal

from service.engine.context import Context
from service.engine.model import CONCEPT_KINDS, Concept, CriterionMapping
from service.engine.results import CriterionResult

ParamType = Literal["concept", "concepts", "decimal", "int", "str", "strs", "agents", "pairs",
                    "criteria"]
RuleFunc = Callable[[Context, CriterionMapping], CriterionResult]
# Reads one nested criterion table (its index among the parts) into a CriterionMapping.
PartReader = Callable[[Any, int], CriterionMapping]
# A check across parameters: the parsed parameters -> (key, message) when they are wrong.
CrossCheck = Callable[[Mapping[str, Any]], "tuple[str, str] | None"]


# Bounds shared by many rules: no look-back window is longer than a century, nobody older
# than 150 years.
MAX_DAYS = 36500
MAX_YEARS = 150


class ParamError(ValueError):
    """A parameter value does not fit its declaration; the loader adds file and key."""


def _number(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ParamError(f"expected a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ParamError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ParamError(f"{value!r} is not a finite number")
    return number


@dataclass(frozen=True)
class Param:
    """One declared parameter: its type, whether required, bounds and accepted concept kinds."""

    type: ParamType
    required: bool = False
    # Inclusive bounds for numbers (int, decimal, pairs); None means unbounded.
    minimum: Decimal | int | None = None
    maximum: Decimal | int | None = None
    # Strictly above zero (a dose, a multiple or a count of 0 would make the rule trivially met).
    positive: bool = False
    # Concept kinds a concept/concepts/agents parameter accepts; empty means any kind.
    kinds: tuple[str, ...] = ()
    # The concept must declare a canonical unit (values are compared after conversion).
    needs_unit: bool = False
    choices: tuple[str, ...] = ()

    def parse(self, value: Any, concepts: Mapping[str, Concept],
              read_part: PartReader | None = None) -> Any:
        """The value in the engine's form, or ParamError saying what is wrong with it.

        Nested criteria (`criteria`) are read by the loader's `read_part`.
        """
        if self.type == "concept":
            return self._concept(value, concepts)
        if self.type in ("concepts", "agents"):
            return (self._concepts(value, concepts) if self.type == "concepts"
                    else self._agents(value, concepts))
        if self.type in ("str", "strs"):
            return self._str(value) if self.type == "str" else self._strs(value)
        if self.type == "criteria":
            return self._parts(value, read_part)
        return self._numeric(value)

    def _numeric(self, value: Any) -> Any:
        if self.type == "pairs":
            return self._pairs(value)
        if self.type == "decimal":
            return self._bounded(_number(value))
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(f"expected an integer, got {value!r}")
        return self._bounded(value)

    def _concepts(self, value: Any, concepts: Mapping[str, Concept]) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise ParamError("expected a non-empty list of concept names")
        return tuple(self._concept(item, concepts) for item in value)

    def _str(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ParamError("expected a string")
        if self.choices and value not in self.choices:
            raise ParamError(f"must be one of {', '.join(self.choices)}")
        return value

    def _strs(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(
                isinstance(v, str) for v in value):
            raise ParamError("expected a non-empty list of strings")
        wrong = [v for v in value if self.choices and v not in self.choices]
        if wrong:
            raise ParamError(f"{wrong[0]!r} is not one of {', '.join(self.choices)}")
        return tuple(value)

    def _parts(self, value: Any, read_part: PartReader | None) -> tuple[CriterionMapping, ...]:
        items = [value] if isinstance(value, dict) else value
        if not isinstance(items, list) or not items:
            raise ParamError("expected criteria tables ([[criteria.of]])")
        count = len(items)
        if self.minimum is not None and count < self.minimum:
            raise ParamError(f"{count} part(s); at least {self.minimum} needed")
        if self.maximum is not None and count > self.maximum:
            raise ParamError(f"{count} parts; at most {self.maximum} allowed")
        if read_part is None:
            raise ParamError("nested criteria need the mapping loader")
        return tuple(read_part(item, index) for index, item in enumerate(items))

    def _bounded(self, number: Any) -> Any:
        if self.positive and number <= 0:
            raise ParamError(f"{number} must be above 0")
        if self.minimum is not None and number < self.minimum:
            raise ParamError(f"{number} is below the minimum {self.minimum}")
        if self.maximum is not None and number > self.maximum:
            raise ParamError(f"{number} is above the maximum {self.maximum}")
        return number

    def _concept(self, name: Any, concepts: Mapping[str, Concept]) -> str:
        if not isinstance(name, str) or name not in concepts:
            raise ParamError(f"unknown concept {name!r}")
        concept = concepts[name]
        if self.kinds and concept.kind not in self.kinds:
            raise ParamError(f"concept {name!r} is a {concept.kind}; this rule takes "
                             f"{' or '.join(self.kinds)} concepts")
        if self.needs_unit and concept.unit is None:
            raise ParamError(f"concept {name!r} has no canonical unit")
        return name

    def _pairs(self, value: Any) -> tuple[tuple[Decimal, Decimal], ...]:
        if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in p)
            for p in value
        ):
            raise ParamError("expected a list of [score, equivalent] integer pairs")
        return tuple((self._bounded(Decimal(a)), self._bounded(Decimal(b))) for a, b in value)

    def _agents(self, value: Any, concepts: Mapping[str, Concept]
                ) -> tuple[tuple[str, tuple[str, ...]], ...]:
        if not isinstance(value, list) or not value:
            raise ParamError("expected a list of {name, concepts} tables")
        agents = []
        for i, agent in enumerate(value):
            if not isinstance(agent, dict) or set(agent) != {"name", "concepts"}:
                raise ParamError(f"[{i}]: expected a table with name and concepts")
            if not isinstance(agent["name"], str) or not agent["name"]:
                raise ParamError(f"[{i}].name: expected a non-empty string")
            items = agent["concepts"]
            if not isinstance(items, list) or not items:
                raise ParamError(f"[{i}].concepts: expected a non-empty list of concept names")
            try:
                names = tuple(self._concept(item, concepts) for item in items)
            except ParamError as exc:
                raise ParamError(f"[{i}].concepts: {exc}") from None
            agents.append((agent["name"], names))
        return tuple(agents)


@dataclass(frozen=True)
class RuleSpec:
    """A rule: its name, evaluator, declared parameters and checks across parameters."""

    name: str
    evaluate: RuleFunc
    params: Mapping[str, Param]
    checks: tuple[CrossCheck, ...] = field(default=())
    doc: str = ""
    # True when the rule's result is already the criterion's verdict (a person's confirmation,
    # a consent): an exclusion does not turn it around.
    verdict: bool = False
    # True when the rule already says "none of these" (absence): as an exclusion it would be
    # turned around into "excluded when none is recorded", so the loader refuses that.
    negated: bool = False

    def check(self, params: Mapping[str, Any]) -> tuple[str, str] | None:
        """The first (key, message) a cross-parameter check reports, or None."""
        for check in self.checks:
            problem = check(params)
            if problem is not None:
                return problem
        return None


_RULES: dict[str, RuleSpec] = {}
RULES: Mapping[str, RuleSpec] = MappingProxyType(_RULES)


def rule(name: str, params: Mapping[str, Param] | None = None,
         checks: tuple[CrossCheck, ...] = (), *, verdict: bool = False,
         negated: bool = False) -> Callable[[RuleFunc], RuleFunc]:
    """Register an evaluator under a rule name with its parameter declarations.

    Called as `rule(name, params)(evaluate)` after the function, not as a decorator: mutation
    testing (mutmut 3) leaves decorated functions unmutated, and every rule must be mutated.
    """
    declared = dict(params or {})
    for key, param in declared.items():
        unknown = set(param.kinds) - set(CONCEPT_KINDS)
        if unknown:
            raise ValueError(f"rule {name}: {key}: unknown concept kind {sorted(unknown)[0]}")

    def register(func: RuleFunc) -> RuleFunc:
        if name in _RULES:
            raise ValueError(f"rule {name!r} registered twice")
        _RULES[name] = RuleSpec(name=name, evaluate=func, params=MappingProxyType(declared),
                                checks=checks, doc=(func.__doc__ or "").strip(),
                                verdict=verdict, negated=negated)
        return func
    return register


def ordered(low: str, high: str) -> CrossCheck:
    """A check that parameter `low`, when given with `high`, is not above it."""
    def check(params: Mapping[str, Any]) -> tuple[str, str] | None:
        if low in params and high in params and params[low] > params[high]:
            return low, f"{params[low]} is above {high} = {params[high]}"
        return None
    return check


def together(*keys: str) -> CrossCheck:
    """A check that the given parameters are either all present or all absent."""
    def check(params: Mapping[str, Any]) -> tuple[str, str] | None:
        present = [k for k in keys if k in params]
        if present and len(present) != len(keys):
            missing = next(k for k in keys if k not in params)
            return missing, f"required together with {present[0]}"
        return None
    return check


def one_of(*keys: str) -> CrossCheck:
    """A check that at least one of the given parameters is present."""
    def check(params: Mapping[str, Any]) -> tuple[str, str] | None:
        if not any(k in params for k in keys):
            return keys[0], f"one of {', '.join(keys)} is required"
        return None
    return check


def needs(key: str, *required: str) -> CrossCheck:
    """A check that `key`, when given, comes with every parameter in `required`."""
    def check(params: Mapping[str, Any]) -> tuple[str, str] | None:
        if key in params:
            for other in required:
                if other not in params:
                    return other, f"required together with {key}"
        return None
    return check


def at_most_listed(count: str, listed: str, noun: str | None = None) -> CrossCheck:
    """A check that a minimum count does not exceed the number of listed items."""
    def check(params: Mapping[str, Any]) -> tuple[str, str] | None:
        if count in params and listed in params and params[count] > len(params[listed]):
            return count, (f"{params[count]} is more than the {len(params[listed])} "
                           f"{noun or listed} listed")
        return None
    return check


# Parameters many rules share.
LOOKBACK = Param("int", minimum=0, maximum=MAX_DAYS)

