"""The coded-result rule (a positive or negative test) with its exact reason, value and
evidence: coded answers, a number against its range's high end, the newest across concepts,
the look-back's edge, nothing recorded (required or not)."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.results import Value
from tests.support.builders import AS_OF, SCT_NEGATIVE, SCT_POSITIVE, cc, day, obs, quantity

DSDNA, SM = "5130-0", "11090-8"
POS = {"concepts": ["anti-dsdna"], "answer": "positive"}
NEG = {"concepts": ["anti-dsdna"], "answer": "negative"}
BOTH = {"concepts": ["anti-dsdna", "anti-sm"], "answer": "positive"}
W90 = f" in the 90 days before {AS_OF.isoformat()}"


def dsdna(when: str, oid: str = "o1", **kw: Any) -> dict[str, Any]:
    return obs(DSDNA, date=when, oid=oid, **kw)


def ranges(*items: dict[str, Any]) -> dict[str, Any]:
    """anti-dsDNA 12 IU/mL with these referenceRange items."""
    return dsdna(day(10), value=12, unit="[IU]/mL") | {"referenceRange": list(items)}


POSITIVE, NEGATIVE = cc(SCT_POSITIVE), cc(SCT_NEGATIVE)

# (id, params, resources, result, reason, value, evidence)
CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], str, str, str | None,
                  tuple[str, ...]]] = [
    ("coded-positive", POS, [dsdna(day(10), value_concept=POSITIVE)], "met",
     f"Anti-dsDNA on {day(10)} is positive.", "positive", ("Observation/o1",)),
    ("coded-negative", POS, [dsdna(day(10), value_concept=NEGATIVE)], "not-met",
     f"Anti-dsDNA on {day(10)} is negative.", "negative", ("Observation/o1",)),
    ("negative-wanted", NEG, [dsdna(day(10), value_concept=NEGATIVE)], "met",
     f"Anti-dsDNA on {day(10)} is negative.", "negative", ("Observation/o1",)),
    # A number is positive above its range's high end, negative at it.
    ("above-high", POS, [dsdna(day(10), value=12, unit="[IU]/mL", ref_high=10)], "met",
     f"Anti-dsDNA on {day(10)} is positive.", "positive", ("Observation/o1",)),
    ("at-high", POS, [dsdna(day(10), value=10, unit="[IU]/mL", ref_high=10)], "not-met",
     f"Anti-dsDNA on {day(10)} is negative.", "negative", ("Observation/o1",)),
    # ">10" against a high end of 10 is above it; "<12" against 10 cannot be read.
    ("more-than-high", POS,
     [dsdna(day(10), value=10, unit="[IU]/mL", comparator=">", ref_high=10)], "met",
     f"Anti-dsDNA on {day(10)} is positive.", "positive", ("Observation/o1",)),
    ("less-than-above-high", POS,
     [dsdna(day(10), value=12, unit="[IU]/mL", comparator="<", ref_high=10)], "unknown",
     f"Anti-dsDNA on {day(10)} cannot be read as positive or negative.", None,
     ("Observation/o1",)),
    # A range item without a high end is passed over for the next one.
    ("second-range-item", POS, [ranges({"low": quantity(0, "[IU]/mL")},
                                       {"high": quantity(10, "[IU]/mL")})], "met",
     f"Anti-dsDNA on {day(10)} is positive.", "positive", ("Observation/o1",)),
    ("no-range", POS, [dsdna(day(10), value=12, unit="[IU]/mL")], "unknown",
     f"Anti-dsDNA on {day(10)} cannot be read as positive or negative.", None,
     ("Observation/o1",)),
    # The newest result of any of the concepts decides, whichever concept is listed first.
    ("newest-first-concept", BOTH,
     [dsdna(day(5), value_concept=POSITIVE), obs(SM, date=day(10), oid="s1",
                                                 value_concept=NEGATIVE)], "met",
     f"Anti-dsDNA on {day(5)} is positive.", "positive", ("Observation/o1",)),
    ("newest-second-concept", BOTH,
     [dsdna(day(10), value_concept=POSITIVE), obs(SM, date=day(5), oid="s1",
                                                  value_concept=NEGATIVE)], "not-met",
     f"Anti-Smith on {day(5)} is negative.", "negative", ("Observation/s1",)),
    # The look-back: its first day counts, the day before does not.
    ("on-the-first-day", POS | {"lookback_days": 90},
     [dsdna(day(90), value_concept=POSITIVE)], "met", f"Anti-dsDNA on {day(90)} is positive.",
     "positive", ("Observation/o1",)),
    ("the-day-before", POS | {"lookback_days": 90},
     [dsdna(day(91), value_concept=POSITIVE)], "unknown",
     f"No anti-dsDNA result is recorded{W90}; the test is required.", None, ()),
    ("the-day-before-not-required", POS | {"lookback_days": 90, "if_missing": "not-met"},
     [dsdna(day(91), value_concept=POSITIVE)], "not-met",
     f"No anti-dsDNA result is recorded{W90}.", None, ()),
    ("own-lookback", POS | {"lookback_days": 30}, [dsdna(day(31), value_concept=POSITIVE)],
     "unknown", f"No anti-dsDNA result is recorded in the 30 days before {AS_OF.isoformat()}; "
     "the test is required.", None, ()),
    ("any-time", POS | {"lookback_days": 0}, [dsdna(day(2000), value_concept=POSITIVE)], "met",
     f"Anti-dsDNA on {day(2000)} is positive.", "positive", ("Observation/o1",)),
    ("any-time-nothing", POS | {"lookback_days": 0}, [], "unknown",
     "No anti-dsDNA result is recorded; the test is required.", None, ()),
    ("nothing", BOTH, [], "unknown",
     "No anti-dsDNA or anti-Smith result is recorded; the test is required.", None, ()),
    ("nothing-not-required", BOTH | {"if_missing": "not-met"}, [], "not-met",
     "No anti-dsDNA or anti-Smith result is recorded.", None, ()),
    ("nothing-said-unknown", BOTH | {"if_missing": "unknown"}, [], "unknown",
     "No anti-dsDNA or anti-Smith result is recorded; the test is required.", None, ()),
]


@pytest.mark.parametrize(("params", "resources", "expected", "reason", "value", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_coded_result(rule_check, params, resources, expected, reason, value, evidence):
    found = rule_check("coded-result", params, resources)
    assert (found.result, found.reason, found.evidence) == (expected, reason, evidence)
    assert found.value == (Value(value) if value is not None else None)
