"""The score-without-items rule (a SLEDAI-2K "excluding fever and headache") at every operator,
with the exact reason, value and evidence: item by item, from the total alone, and unread."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from service.engine.results import Value
from tests.support.builders import cc, day, sledai

ITEMS = "urn:trial-eligibility:sledai-2k-descriptor"
NAME = "SLEDAI-2K score"


def params(operator: str, threshold: str = "6", **more: Any) -> dict[str, Any]:
    return {"concept": "sledai-2k", "item_system": ITEMS,
            "exclude_items": ["fever", "lupus-headache"], "operator": operator,
            "threshold": threshold, **more}


def scored(points: dict[str, Any], total: int | None = None, oid: str = "s1",
           when: str | None = None) -> dict[str, Any]:
    """A score whose components carry each item's points (`valueInteger` unless a dict)."""
    res = sledai(sum(v for v in points.values() if isinstance(v, int)) if total is None else total,
                 when or day(5), oid=oid)
    res["component"] = [{"code": cc(k, ITEMS), **(v if isinstance(v, dict) else
                                                   {"valueInteger": v})}
                        for k, v in points.items()]
    return res


ON = day(5)
# 9 points of which fever and headache 3: 6 without them.
NINE = {"arthritis": 4, "fever": 1, "lupus-headache": 2, "rash": 2}

CASES = [
    # Item by item: the adjusted score compared, at the limit, for every operator.
    ("ge-at-limit", ">=", "6", [scored(NINE)], "met",
     f"{NAME} 9 on {ON} is 6 without fever, lupus-headache, at least 6.", 6),
    ("ge-above-limit", ">=", "7", [scored(NINE)], "not-met",
     f"{NAME} 9 on {ON} is 6 without fever, lupus-headache, below 7.", 6),
    ("le-at-limit", "<=", "6", [scored(NINE)], "met",
     f"{NAME} 9 on {ON} is 6 without fever, lupus-headache, at most 6.", 6),
    ("le-below-limit", "<=", "5", [scored(NINE)], "not-met",
     f"{NAME} 9 on {ON} is 6 without fever, lupus-headache, above 5.", 6),
    ("gt-at-limit", ">", "6", [scored(NINE)], "not-met",
     f"{NAME} 9 on {ON} is 6 without fever, lupus-headache, not above 6.", 6),
    ("gt-below", ">", "5", [scored(NINE)], "met",
     f"{NAME} 9 on {ON} is 6 without fever, lupus-headache, above 5.", 6),
    ("lt-at-limit", "<", "6", [scored(NINE)], "not-met",
     f"{NAME} 9 on {ON} is 6 without fever, lupus-headache, not below 6.", 6),
    ("lt-above", "<", "7", [scored(NINE)], "met",
     f"{NAME} 9 on {ON} is 6 without fever, lupus-headache, below 7.", 6),
    # The items listed add up to the total: an excluded item not listed gave no points.
    ("unlisted-excluded-is-zero", ">=", "6", [scored({"arthritis": 4, "rash": 2})], "met",
     f"{NAME} 6 on {ON} is 6 without fever, lupus-headache, at least 6.", 6),
    # Points in valueDecimal or valueQuantity count like valueInteger.
    ("decimal-and-quantity-items", ">=", "6",
     [scored({"arthritis": 4, "rash": 2, "fever": {"valueDecimal": 1},
              "lupus-headache": {"valueQuantity": {"value": 2}}}, total=9)], "met",
     f"{NAME} 9 on {ON} is 6 without fever, lupus-headache, at least 6.", 6),
    # Items that do not add up and miss an excluded one: the total alone decides what it can.
    ("total-only-le-holds", "<=", "9",
     [scored({"arthritis": 4}, total=9)], "met",
     f"{NAME} 9 on {ON} is already at most 9 before fever, lupus-headache are taken off.", 9),
    ("total-only-lt-holds", "<", "10", [sledai(9, ON, oid="s1")], "met",
     f"{NAME} 9 on {ON} is already below 10 before fever, lupus-headache are taken off.", 9),
    ("total-only-ge-fails", ">=", "10", [sledai(9, ON, oid="s1")], "not-met",
     f"{NAME} 9 on {ON} is already below 10 before fever, lupus-headache are taken off.", 9),
    ("total-only-gt-fails", ">", "9", [sledai(9, ON, oid="s1")], "not-met",
     f"{NAME} 9 on {ON} is already not above 9 before fever, lupus-headache are taken off.", 9),
    ("total-only-ge-open", ">=", "9", [sledai(9, ON, oid="s1")], "unknown",
     f"{NAME} 9 on {ON} does not record the points of fever, lupus-headache item by item; "
     "score it on the worksheet or confirm it.", 9),
    ("total-only-gt-open", ">", "8", [sledai(9, ON, oid="s1")], "unknown",
     f"{NAME} 9 on {ON} does not record the points of fever, lupus-headache item by item; "
     "score it on the worksheet or confirm it.", 9),
    ("total-only-le-open", "<=", "8", [sledai(9, ON, oid="s1")], "unknown",
     f"{NAME} 9 on {ON} does not record the points of fever, lupus-headache item by item; "
     "score it on the worksheet or confirm it.", 9),
    ("total-only-lt-open", "<", "9", [sledai(9, ON, oid="s1")], "unknown",
     f"{NAME} 9 on {ON} does not record the points of fever, lupus-headache item by item; "
     "score it on the worksheet or confirm it.", 9),
]


@pytest.mark.parametrize(("operator", "threshold", "resources", "expected", "reason", "value"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_adjusted_score_against_every_operator(rule_check, operator, threshold, resources,
                                                   expected, reason, value):
    found = rule_check("score-without-items", params(operator, threshold), resources)
    assert (found.result, found.reason) == (expected, reason)
    assert found.value == Value(Decimal(value))
    assert found.evidence == ("Observation/s1",)


def test_items_of_another_system_and_malformed_components_are_not_items(rule_check):
    res = scored(NINE)
    # A stray non-table component first, and an item of another code system with points.
    res["component"] = ["not a component", *res["component"],
                        {"code": cc("fever", "urn:other"), "valueInteger": 5}]
    found = rule_check("score-without-items", params(">="), [res])
    assert (found.result, found.value) == ("met", Value(Decimal(6)))


def test_a_score_without_a_number_or_outside_the_lookback(rule_check):
    empty = sledai(9, ON, oid="s1")
    del empty["valueInteger"]
    found = rule_check("score-without-items", params(">="), [empty])
    assert (found.result, found.reason, found.evidence, found.value) == (
        "unknown", f"The {NAME} of {ON} has no number.", ("Observation/s1",), None)
    # The criterion's own look-back replaces the concept's.
    old = sledai(9, day(40), oid="s2")
    found = rule_check("score-without-items", params(">=", lookback_days=30), [old])
    assert (found.result, found.reason, found.evidence) == (
        "unknown", f"No {NAME} within 30 days.", ())
    assert rule_check("score-without-items", params(">="), [old]).result == "unknown"
    assert rule_check("score-without-items", params(">=", lookback_days=60),
                      [old]).evidence == ("Observation/s2",)
