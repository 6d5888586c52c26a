"""The titer rule (ANA >= 1:N) with its exact reason, value and evidence: a ratio, a quantity or
text at the minimum and below it, at the look-back's edge, reported below a dilution
("<1:40") or negative, unreadable, only a presence result, or nothing."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.results import Value
from tests.support.builders import ANA, ANA_PRESENCE, cc, day, obs

DSDNA = "5130-0"  # anti-dsDNA: a concept whose display starts in lower case
ANA80 = {"concept": "ana-titer", "min_denominator": "80"}
WITH_PRESENCE = ANA80 | {"presence_concept": "ana-presence"}
SEARCHED = "LOINC 29953-7, 33253-6, 5048-4"


def ana(when: str, oid: str = "t1", **kw: Any) -> dict[str, Any]:
    return obs(ANA, date=when, oid=oid, **kw)


# (id, params, resources, result, reason, value, evidence)
CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], str, str, str | None,
                  tuple[str, ...]]] = [
    ("ratio-at-the-minimum", ANA80, [ana(day(10), value_ratio=(1, 80))], "met",
     f"ANA titer 1:80 on {day(10)} is at least 1:80.", "1:80", ("Observation/t1",)),
    ("ratio-just-below", ANA80, [ana(day(10), value_ratio=(1, 79))], "not-met",
     f"ANA titer 1:79 on {day(10)} is below 1:80.", "1:79", ("Observation/t1",)),
    # 2:160 is 1:80: the value is the denominator per one, the reason shows what was written.
    ("ratio-of-two", ANA80, [ana(day(10), value_ratio=(2, 160))], "met",
     f"ANA titer 2:160 on {day(10)} is at least 1:80.", "1:80", ("Observation/t1",)),
    ("quantity", ANA80, [ana(day(10), value=160, unit="{titer}")], "met",
     f"ANA titer 1:160 on {day(10)} is at least 1:80.", "1:160", ("Observation/t1",)),
    ("text-at-least", ANA80, [ana(day(10), value_string=">1:640")], "met",
     f"ANA titer >1:640 on {day(10)} is at least 1:80.", "1:640", ("Observation/t1",)),
    ("minimum-of-160", {"concept": "ana-titer", "min_denominator": "160"},
     [ana(day(10), value_ratio=(1, 80))], "not-met",
     f"ANA titer 1:80 on {day(10)} is below 1:160.", "1:80", ("Observation/t1",)),
    # The concept's look-back (90 days): its first day is inside, the day before is stale.
    ("on-the-first-day", ANA80, [ana(day(90), value_ratio=(1, 160))], "met",
     f"ANA titer 1:160 on {day(90)} is at least 1:80.", "1:160", ("Observation/t1",)),
    ("the-day-before", ANA80, [ana(day(91), value_ratio=(1, 160))], "unknown",
     f"No ANA titer within 90 days (latest 1:160 on {day(91)} is stale).", None,
     ("Observation/t1",)),
    ("own-lookback", ANA80 | {"lookback_days": 30}, [ana(day(31), value_ratio=(1, 160))],
     "unknown", f"No ANA titer within 30 days (latest 1:160 on {day(31)} is stale).", None,
     ("Observation/t1",)),
    ("own-lookback-edge", ANA80 | {"lookback_days": 30}, [ana(day(30), value_ratio=(1, 160))],
     "met", f"ANA titer 1:160 on {day(30)} is at least 1:80.", "1:160", ("Observation/t1",)),
    ("any-time", ANA80 | {"lookback_days": 0}, [ana(day(2000), value_ratio=(1, 160))],
     "met", f"ANA titer 1:160 on {day(2000)} is at least 1:80.", "1:160", ("Observation/t1",)),
    # The reason starts with the concept's name, capitalised.
    ("named-by-the-concept", {"concept": "anti-dsdna", "min_denominator": "10"},
     [obs(DSDNA, date=day(10), oid="d1", value_ratio=(1, 20))], "met",
     f"Anti-dsDNA 1:20 on {day(10)} is at least 1:10.", "1:20", ("Observation/d1",)),
    ("named-by-the-concept-below", {"concept": "anti-dsdna", "min_denominator": "40"},
     [obs(DSDNA, date=day(10), oid="d1", value_ratio=(1, 20))], "not-met",
     f"Anti-dsDNA 1:20 on {day(10)} is below 1:40.", "1:20", ("Observation/d1",)),
    # Reported below a dilution: below the minimum when that dilution is at most the minimum.
    ("below-40", ANA80, [ana(day(10), value_string="<1:40")], "not-met",
     f"ANA titer <1:40 on {day(10)} is below 1:80.", "<1:40", ("Observation/t1",)),
    ("below-80-at-the-minimum", ANA80, [ana(day(10), value_string="<=1:80")], "not-met",
     f"ANA titer <=1:80 on {day(10)} is below 1:80.", "<=1:80", ("Observation/t1",)),
    ("below-160", ANA80, [ana(day(10), value_string="<1:160")], "unknown",
     f"ANA titer <1:160 on {day(10)} may or may not reach 1:80.", "<1:160",
     ("Observation/t1",)),
    ("below-stale", ANA80, [ana(day(91), value_string="<1:40")], "unknown",
     f"No ANA titer within 90 days (latest <1:40 on {day(91)} is stale).", None,
     ("Observation/t1",)),
    ("below-on-the-first-day", ANA80, [ana(day(90), value_string="<1:40")], "not-met",
     f"ANA titer <1:40 on {day(90)} is below 1:80.", "<1:40", ("Observation/t1",)),
    # Negative: below any minimum from 1:80 (the screening dilution); below that, unsure.
    ("negative-80", ANA80, [ana(day(10), value_string="negative")], "not-met",
     f"ANA reported negative on {day(10)}: below 1:80.", "negative", ("Observation/t1",)),
    ("negative-79", {"concept": "ana-titer", "min_denominator": "79"},
     [ana(day(10), value_string="Negative")], "unknown",
     f"ANA reported negative on {day(10)}, without the screening dilution; 1:79 cannot be "
     "judged.", None, ("Observation/t1",)),
    ("negative-stale", ANA80, [ana(day(91), value_string="negative")], "unknown",
     f"No ANA titer within 90 days (latest negative on {day(91)} is stale).", None,
     ("Observation/t1",)),
    # An unreadable newest result gives way to an older readable one; alone it is unknown.
    ("unreadable-then-readable", ANA80,
     [ana(day(5), oid="t2", value_string="see comment"), ana(day(10), value_ratio=(1, 160))],
     "met", f"ANA titer 1:160 on {day(10)} is at least 1:80.", "1:160", ("Observation/t1",)),
    ("unreadable-only", ANA80,
     [ana(day(5), oid="t2", value_string="see comment"), ana(day(8), oid="t3")], "unknown",
     "The latest ANA titer result has no readable titer.", None, ("Observation/t2",)),
    ("presence-only", WITH_PRESENCE,
     [obs(ANA_PRESENCE, date=day(10), oid="p1", value_concept=cc("10828004"))], "unknown",
     "Only an ANA presence result is recorded; a titer is needed to show >= 1:80.", None,
     ("Observation/p1",)),
    ("presence-not-asked", ANA80,
     [obs(ANA_PRESENCE, date=day(10), oid="p1", value_concept=cc("10828004"))], "unknown",
     f"No ANA titer on record under the codes searched ({SEARCHED}).", None, ()),
    ("nothing", WITH_PRESENCE, [], "unknown",
     f"No ANA titer on record under the codes searched ({SEARCHED}).", None, ()),
]


@pytest.mark.parametrize(("params", "resources", "expected", "reason", "value", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_titer(rule_check, params, resources, expected, reason, value, evidence):
    found = rule_check("titer", params, resources)
    assert (found.result, found.reason, found.evidence) == (expected, reason, evidence)
    assert found.value == (Value(value) if value is not None else None)
