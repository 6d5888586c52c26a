"""Scores read item by item: a total without the points of some descriptors (SLEDAI-2K
"excluding fever and headache"), from the score's components."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from service.engine.context import Context
from service.engine.labs import fmt, in_window, label, latest_entries
from service.engine.model import CriterionMapping
from service.engine.numbers import to_decimal
from service.engine.reasons import FAIL_WORDS, OPERATOR_WORDS, day, result
from service.engine.record import as_list, codings
from service.engine.registry import LOOKBACK, Param, rule
from service.engine.results import CriterionResult, Value


def _number(holder: dict[str, Any]) -> Decimal | None:
    for key in ("valueInteger", "valueDecimal"):
        if key in holder:
            return to_decimal(holder[key])
    quantity = holder.get("valueQuantity")
    return to_decimal(quantity.get("value")) if isinstance(quantity, dict) else None


def _items(resource: dict[str, Any], system: str) -> dict[str, Decimal | None]:
    """Points per item code of a score's components in the item system."""
    out: dict[str, Decimal | None] = {}
    for component in as_list(resource.get("component")):
        if not isinstance(component, dict):
            continue
        for coding in codings(component.get("code")):
            if coding.get("system") == system and isinstance(coding.get("code"), str):
                out[coding["code"]] = _number(component)
    return out


def score_without_items(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """The newest score in the look-back, less the points of the excluded items, compared.

    A score without its items decides only when the total alone does: the total is an upper
    bound of the adjusted score, so a total that fails "at least" fails; otherwise unknown."""
    p = crit.params
    concept = ctx.concept(p["concept"])
    name = label(concept)
    lookback = p.get("lookback_days", concept.lookback_days)
    entries, _ = latest_entries(ctx.record, concept, ctx.as_of)
    found = [e for e in entries if e.when is not None and in_window(e.when.day, ctx.as_of,
                                                                     lookback)]
    if not found or found[0].when is None:
        return result(crit, "unknown", f"No {name} within {lookback} days.")
    entry = found[0]
    assert entry.when is not None
    total = _number(entry.resource)
    if total is None:
        return result(crit, "unknown", f"The {name} of {day(entry.when.day)} has no number.",
                      evidence=[entry.ref])
    op, limit = p["operator"], p["threshold"]
    excluded = ", ".join(p["exclude_items"])
    items = _items(entry.resource, p["item_system"])
    if items and all(v is not None for v in items.values()) and sum(
            v for v in items.values() if v is not None) == total:
        # The items listed add up to the total: an item not listed gave no points.
        items = {i: items.get(i, Decimal(0)) for i in set(items) | set(p["exclude_items"])}
    missing = [i for i in p["exclude_items"] if i not in items]
    if items and not missing and all(items[i] is not None for i in p["exclude_items"]):
        adjusted = total - sum((items[i] or Decimal(0)) for i in p["exclude_items"])
        verdict = {">=": adjusted >= limit, "<=": adjusted <= limit, ">": adjusted > limit,
                   "<": adjusted < limit}[op]
        words = OPERATOR_WORDS if verdict else FAIL_WORDS
        return result(crit, "met" if verdict else "not-met",
                      f"{name} {fmt(total)} on {day(entry.when.day)} is {fmt(adjusted)} without "
                      f"{excluded}, {words[op]} {fmt(limit)}.",
                      value=Value(adjusted), evidence=[entry.ref])
    # Points only ever come off: the adjusted score is at most the total, so the total
    # decides "at least" when it already fails and "at most" when it already holds.
    if op in ("<=", "<") and {"<=": total <= limit, "<": total < limit}[op]:
        return result(crit, "met",
                      f"{name} {fmt(total)} on {day(entry.when.day)} is already "
                      f"{OPERATOR_WORDS[op]} {fmt(limit)} before {excluded} are taken off.",
                      value=Value(total), evidence=[entry.ref])
    if op in (">=", ">") and not {">=": total >= limit, ">": total > limit}[op]:
        return result(crit, "not-met",
                      f"{name} {fmt(total)} on {day(entry.when.day)} is already "
                      f"{FAIL_WORDS[op]} {fmt(limit)} before {excluded} are taken off.",
                      value=Value(total), evidence=[entry.ref])
    return result(crit, "unknown",
                  f"{name} {fmt(total)} on {day(entry.when.day)} does not record the points of "
                  f"{excluded} item by item; score it on the worksheet or confirm it.",
                  value=Value(total), evidence=[entry.ref])


rule("score-without-items", {
    "concept": Param("concept", required=True, kinds=("observation",)),
    # The code system of the score's item components (the SLEDAI-2K worksheet writes
    # urn:trial-eligibility:sledai-2k-descriptor with one component per descriptor).
    "item_system": Param("str", required=True),
    # Item codes whose points do not count (e.g. ["fever", "lupus-headache"]).
    "exclude_items": Param("strs", required=True),
    "operator": Param("str", required=True, choices=tuple(OPERATOR_WORDS)),
    "threshold": Param("decimal", required=True, minimum=0),
    "lookback_days": LOOKBACK,
})(score_without_items)
