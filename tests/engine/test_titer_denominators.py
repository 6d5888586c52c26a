"""ratio_denominator at its edges: ratios and texts with a numerator other than 1, zero and
negative numbers, a quantity of 1, hidden zero-width spaces, a pattern after the titre, "at
least" comparators, long unreadable texts and no titre at all, in the words the reasons use."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from service.engine.labs import ratio_denominator


def ratio(numerator: Any, denominator: Any) -> dict[str, Any]:
    return {"valueRatio": {"numerator": {"value": numerator},
                           "denominator": {"value": denominator}}}


CASES = [
    ("a ratio of 2 to 640", ratio(2, 640), (Decimal(320), "2:640")),
    ("a ratio with a negative numerator", ratio(-1, 160), (None, "an unreadable ratio")),
    ("a ratio with a zero numerator", ratio(0, 160), (None, "an unreadable ratio")),
    ("a quantity of 1", {"valueQuantity": {"value": 1}}, (Decimal(1), "1:1")),
    ("a quantity of 0", {"valueQuantity": {"value": 0}}, (None, "an unreadable quantity")),
    ("a negative quantity", {"valueQuantity": {"value": -5}}, (None, "an unreadable quantity")),
    ("a quantity without a number", {"valueQuantity": {}}, (None, "an unreadable quantity")),
    ("text 2:640", {"valueString": "2:640"}, (Decimal(320), "2:640")),
    ("text 1:160", {"valueString": "1:160"}, (Decimal(160), "1:160")),
    ("text with a zero-width space", {"valueString": "1:\u200b160"}, (Decimal(160), "1:160")),
    ("text with a pattern after it", {"valueString": "1:160 speckled"},
     (Decimal(160), "1:160")),
    ("text at least", {"valueString": ">=1:80"}, (Decimal(80), ">=1:80")),
    ("text below", {"valueString": "<1:40"}, (None, "the text '<1:40'")),
    ("text with a zero numerator", {"valueString": "0:160"}, (None, "the text '0:160'")),
    ("a long unreadable text", {"valueString": "  not a titre at all, really  "},
     (None, "the text 'not a titre at all, '")),
    ("no titre", {}, (None, "no titer value")),
]


@pytest.mark.parametrize(("resource", "read"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_titer_denominator_at_its_edges(resource, read):
    assert ratio_denominator(resource) == read
