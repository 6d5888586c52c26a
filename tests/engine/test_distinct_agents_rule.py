"""The distinct-agents rule with its exact reasons and evidence: agents taken longer than the
limit, agents whose duration is not recorded, agents taken too briefly, none of the list
(found surviving by mutation testing: docs/mutation-testing.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.builders import RX_CYC, RX_HCQ, RX_PREDNISONE, RX_TAC, day, med_statement

PARAMS = {"agents": [{"name": "glucocorticoid", "concepts": ["prednisone"]},
                     {"name": "tacrolimus", "concepts": ["tacrolimus"]},
                     {"name": "cyclophosphamide", "concepts": ["cyclophosphamide"]}],
          "min_agents": 2, "more_than_days": 100}


def taken(code: str, mid: str, days: int | None) -> dict[str, Any]:
    """A statement of `days` days ending 10 days ago; None: a date without a period."""
    end = day(10) if days is not None else None
    return med_statement(code, day(10 + (days or 0)), end, dose=(10, "mg"), mid=mid)


def ms(*ids: str) -> tuple[str, ...]:
    return tuple(f"MedicationStatement/{i}" for i in ids)


# (id, resources, result, reason, evidence)
CASES: list[tuple[str, list[dict[str, Any]], str, str, tuple[str, ...]]] = [
    ("two-taken", [taken(RX_PREDNISONE, "p1", 101), taken(RX_TAC, "t1", 200)], "met",
     "2 of the listed agents taken for more than 100 days: glucocorticoid (101 days), "
     "tacrolimus (200 days).", ms("p1", "t1")),
    ("one-at-the-limit", [taken(RX_PREDNISONE, "p1", 100), taken(RX_TAC, "t1", 200)], "not-met",
     "Fewer than 2 of the listed agents taken for more than 100 days (tacrolimus (200 days), "
     "glucocorticoid (100 days)).", ms("p1", "t1")),
    # One shown, two whose duration is not recorded: evidence keeps the one shown.
    ("durations-missing", [taken(RX_PREDNISONE, "p1", 150), taken(RX_TAC, "t1", None),
                           taken(RX_CYC, "c1", None)], "unknown",
     "Only 1 of the listed agents shown for more than 100 days; the duration of tacrolimus, "
     "cyclophosphamide is not recorded.", ms("p1", "t1", "c1")),
    ("taken-then-short", [taken(RX_PREDNISONE, "p1", 150), taken(RX_TAC, "t1", 50)], "not-met",
     "Fewer than 2 of the listed agents taken for more than 100 days (glucocorticoid (150 days), "
     "tacrolimus (50 days)).", ms("p1", "t1")),
    ("first-agent-absent", [taken(RX_TAC, "t1", 101), taken(RX_CYC, "c1", 101)], "met",
     "2 of the listed agents taken for more than 100 days: tacrolimus (101 days), "
     "cyclophosphamide (101 days).", ms("t1", "c1")),
    ("just-enough-unknown", [taken(RX_PREDNISONE, "p1", 150), taken(RX_TAC, "t1", None)],
     "unknown", "Only 1 of the listed agents shown for more than 100 days; the duration of "
     "tacrolimus is not recorded.", ms("p1", "t1")),
    ("none-of-the-list", [taken(RX_HCQ, "h1", 300)], "not-met",
     "Fewer than 2 of the listed agents taken for more than 100 days (none of the listed "
     "agents).", ()),
    ("no-history", [], "unknown", "No medication history is recorded.", ()),
]


@pytest.mark.parametrize(("resources", "expected", "reason", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_distinct_agents(rule_check, resources, expected, reason, evidence):
    found = rule_check("distinct-agents", PARAMS, resources)
    assert (found.result, found.reason, found.evidence, found.value) == (
        expected, reason, evidence, None)
