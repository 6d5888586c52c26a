"""Combining criteria: all-of, any-of, at-least N of, not; nestable, in three-valued logic."""

from __future__ import annotations

from collections.abc import Sequence

from service.engine.context import Context
from service.engine.decide import decide
from service.engine.model import CriterionMapping
from service.engine.reasons import result
from service.engine.registry import Param, at_most_listed, rule
from service.engine.results import CriterionResult, Result

# A combination of more than 20 parts is no longer readable as one criterion.
MAX_PARTS = 20
Decided = list[tuple[CriterionMapping, CriterionResult]]


def _parts(ctx: Context, crit: CriterionMapping) -> Decided:
    return [(part, decide(ctx, part)) for part in crit.params["of"]]


def _said(decided: Decided) -> str:
    """Each part with its reason: 'C3 below normal: C3 0.6 g/L ... is below ...'."""
    return "; ".join(f"{part.text}: {found.reason.rstrip('.')}" for part, found in decided)


def _refs(decided: Decided) -> list[str]:
    return [ref for _, found in decided for ref in found.evidence]


def _with(decided: Decided, outcome: str) -> Decided:
    return [(part, found) for part, found in decided if found.result == outcome]


def _combine(crit: CriterionMapping, outcome: Result, lead: str, deciding: Decided,
             sep: str = ": ") -> CriterionResult:
    """The combination's result; a single deciding part lends its value."""
    value = deciding[0][1].value if len(deciding) == 1 else None
    return result(crit, outcome, f"{lead}{sep}{_said(deciding)}.", value=value,
                  evidence=_refs(deciding))


OF = Param("criteria", required=True, minimum=2, maximum=MAX_PARTS)


def any_of(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met if any part is met, not-met if all are not-met, else unknown."""
    decided = _parts(ctx, crit)
    met = _with(decided, "met")
    if met:
        return _combine(crit, "met", "Met by", met[:1], " ")
    unknown = _with(decided, "unknown")
    if unknown:
        return _combine(crit, "unknown", "No part is met yet, and these cannot be decided",
                        unknown)
    return _combine(crit, "not-met", "None of the parts is met", decided)


rule("any-of", {"of": OF})(any_of)


def all_of(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met if every part is met, not-met if any is not-met, else unknown."""
    decided = _parts(ctx, crit)
    not_met = _with(decided, "not-met")
    if not_met:
        return _combine(crit, "not-met", "Not met because of", not_met[:1], " ")
    unknown = _with(decided, "unknown")
    if unknown:
        return _combine(crit, "unknown", "Not every part can be decided", unknown)
    return _combine(crit, "met", "Every part is met", decided)


rule("all-of", {"of": OF})(all_of)


def at_least(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met if at least `count` parts are met; not-met if too few can still be met."""
    decided = _parts(ctx, crit)
    need = crit.params["count"]
    met, unknown = _with(decided, "met"), _with(decided, "unknown")
    if len(met) >= need:
        return _combine(crit, "met", f"{len(met)} of {len(decided)} parts are met "
                        f"(at least {need} needed)", met)
    if len(met) + len(unknown) >= need:
        return _combine(crit, "unknown", f"{len(met)} of {len(decided)} parts are met, "
                        f"{need} needed, and these cannot be decided", unknown)
    return _combine(crit, "not-met", f"Only {len(met)} of {len(decided)} parts can be met "
                    f"(at least {need} needed)", _with(decided, "not-met"))


rule("at-least", {
    "of": OF,
    "count": Param("int", required=True, minimum=1, maximum=MAX_PARTS),
}, checks=(at_most_listed("count", "of", "parts"),))(at_least)


def negation(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met if the part is not-met, not-met if it is met, else unknown."""
    decided: Sequence[tuple[CriterionMapping, CriterionResult]] = _parts(ctx, crit)
    part, found = decided[0]
    flipped: dict[str, Result] = {"met": "not-met", "not-met": "met", "unknown": "unknown"}
    lead = {"met": "Does not hold", "not-met": "Holds", "unknown": "Cannot be decided"}
    outcome = flipped[found.result]
    return result(crit, outcome, f"{lead[outcome]}: {part.text}: {found.reason.rstrip('.')}.",
                  value=found.value, evidence=found.evidence)


rule("not", {"of": Param("criteria", required=True, minimum=1, maximum=1)})(negation)
