"""How rules phrase their results: the CriterionResult builder and the wording helpers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from service.engine.model import CriterionMapping
from service.engine.results import CriterionResult, Result, Value

OPERATOR_WORDS = {">=": "at least", "<=": "at most", ">": "above", "<": "below"}
FAIL_WORDS = {">=": "below", "<=": "above", ">": "not above", "<": "not below"}


def result(crit: CriterionMapping, outcome: Result, reason: str, *, value: Value | None = None,
           evidence: Sequence[str] = (), uln: Value | None = None,
           uln_source: str | None = None) -> CriterionResult:
    """Build a CriterionResult for a mapping criterion (evidence de-duplicated, order kept)."""
    return CriterionResult(
        id=crit.id, result=outcome, reason=reason, kind=crit.kind,
        value=value, evidence=tuple(dict.fromkeys(evidence)), uln=uln, uln_source=uln_source,
    )


def day(d: date) -> str:
    """A date as reasons show it (ISO 8601)."""
    return d.isoformat()


def any_of(names: Sequence[str]) -> str:
    """Names joined by "or", each once (two concepts may share a display: "organ transplant")."""
    return " or ".join(dict.fromkeys(names))


def cap(text: str) -> str:
    """First letter upper-cased, the rest untouched (ALT stays ALT)."""
    return text[:1].upper() + text[1:]


def with_unit(number: str, unit: str | None) -> str:
    """A number with its unit for reasons: no unit for '1', no space before '%'."""
    if not unit or unit == "1":
        return number
    if unit == "%":
        return f"{number}%"
    return f"{number} {unit}"
