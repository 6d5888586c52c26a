"""A value compared with a limit, plain, qualified ("< 0.5", "> 100") or a range, at and
around the limit: every combination of comparator and operator, against the interval the
qualified value stands for (a brute-force check over sample points decides what is right)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.engine.labs import compare

D = Decimal
OPERATORS = (">=", ">", "<=", "<")
COMPARATORS = (">", ">=", "<", "<=")
LIMIT = D("0.5")


def holds(x: Decimal, operator: str, limit: Decimal) -> bool:
    return {">=": x >= limit, ">": x > limit, "<=": x <= limit, "<": x < limit}[operator]


def members(value: Decimal, comparator: str) -> list[Decimal]:
    """Sample points of the interval a qualified value stands for, near and far from it."""
    steps = [D("0.001"), D("0.01"), D("0.1"), D(1), D(100)]
    inward = [value + s for s in steps] if comparator in (">", ">=") else [value - s for s in steps]
    return inward + ([value] if comparator in (">=", "<=") else [])


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("comparator", COMPARATORS)
@pytest.mark.parametrize("value", [D("0.4"), D("0.5"), D("0.6")], ids=["below", "at", "above"])
def test_qualified_values_decide_only_when_the_whole_interval_agrees(value, comparator, operator):
    answers = {holds(x, operator, LIMIT) for x in members(value, comparator)}
    expected = answers.pop() if len(answers) == 1 else None
    assert compare(value, comparator, operator, LIMIT) is expected


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("value", [D("0.4"), D("0.5"), D("0.6")])
def test_plain_values_compare_exactly(value, operator):
    assert compare(value, None, operator, LIMIT) is holds(value, operator, LIMIT)
    assert compare(value, "", operator, LIMIT) is holds(value, operator, LIMIT)


@pytest.mark.parametrize(("low", "high", "operator", "expected"), [
    (D("0.2"), D("0.4"), "<", True),
    (D("0.2"), D("0.5"), "<", None),   # the upper end is at the limit: not all of it is below
    (D("0.2"), D("0.5"), "<=", True),
    (D("0.5"), D("0.9"), ">=", True),
    (D("0.5"), D("0.9"), ">", None),
    (D("0.6"), D("0.9"), "<=", False),
    (D("0.2"), None, "<", None),       # a range without its upper end decides nothing
])
def test_ranges_decide_when_both_ends_agree(low, high, operator, expected):
    assert compare(low, "range", operator, LIMIT, high) is expected


def test_an_unknown_comparator_decides_nothing():
    assert compare(D(1), "ad", ">=", LIMIT) is None
    assert compare(D(1), "~", "<", LIMIT) is None
