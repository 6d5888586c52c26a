"""The upper limit from the result's own reference range: which entry, in which unit (the bound's
code, its unit, else the value's code or unit), past entries that cannot be used."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.builders import ALT, obs

ULN_40 = ("ALT 50 U/L on 2026-11-14 (ULN 40 U/L from reference range of Observation/r1) is "
          "above ULN.")


def alt(quantity: dict[str, Any], *ranges: Any) -> dict[str, Any]:
    made = obs(ALT, oid="r1")
    made["valueQuantity"] = {"value": 50, **quantity}
    made["referenceRange"] = list(ranges)
    return made


CASES = [
    ("a bound without a unit takes the value's code",
     alt({"code": "U/L", "unit": "units per litre"}, {"high": {"value": 40}}), ULN_40),
    ("a bound without a unit takes the value's unit",
     alt({"unit": "U/L"}, {"high": {"value": 40}}), ULN_40),
    ("the bound's code before its words",
     alt({"code": "U/L"}, {"high": {"value": 40, "code": "U/L", "unit": "units per litre"}}),
     ULN_40),
    ("past entries without a high bound or a number",
     alt({"code": "U/L"}, "40", {"low": {"value": 5}}, {"high": {"unit": "U/L"}},
         {"high": {"value": 40, "code": "U/L"}}), ULN_40),
    ("past a bound in a unit that does not convert",
     alt({"code": "U/L"}, {"high": {"value": 1, "code": "kg"}},
         {"high": {"value": 40, "code": "U/L"}}), ULN_40),
    ("past a unit that is not text",
     alt({"code": "U/L"}, {"high": {"value": 1, "unit": 5}},
         {"high": {"value": 40, "code": "U/L"}}), ULN_40),
]


@pytest.mark.parametrize(("resource", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_upper_limit_from_the_results_own_range(rule_check, resource, reason):
    found = rule_check("normal-limit", {"concept": "alt", "limit": "high", "operator": "<="},
                       [resource])
    assert (found.result, found.reason, found.evidence) == ("not-met", reason,
                                                            ("Observation/r1",))
