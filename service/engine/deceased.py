"""The deceased rule: a patient who died on or before the as-of date is ineligible everywhere."""

from __future__ import annotations

from datetime import date
from typing import Any

from service.engine.record import parse_date
from service.engine.results import CriterionResult

# The result's id in every study (docs/candidates-and-triggers.md); mappings cannot use it.
DECEASED_ID = "deceased"


def _written(value: str, precision: str) -> str:
    """The date of death at the precision it was recorded (2026, 2026-03, 2026-03-14)."""
    return value.strip()[: {"year": 4, "month": 7}.get(precision, 10)]


def deceased_on(patient: dict[str, Any], as_of: date) -> str | None:
    """How the record says the patient died on or before `as_of`; None when it does not.

    `deceasedDateTime` counts when its earliest possible day is on or before the as-of date
    (a death recorded as "2026-03" counts from 2026-03-01: never call a bereaved family); a
    death recorded after the as-of date is ignored like any data dated after it. A
    `deceasedDateTime` that cannot be read still says the patient died.
    """
    when = patient.get("deceasedDateTime")
    if when is not None:
        parsed = parse_date(when)
        if parsed is None:
            return "deceased (the date of death cannot be read)"
        if parsed.day > as_of:
            return None
        return f"deceased on {_written(str(when), parsed.precision)}"
    if patient.get("deceasedBoolean") is True:
        return "deceased"
    return None


def deceased_result(patient: dict[str, Any], patient_id: str, as_of: date
                    ) -> CriterionResult | None:
    """The `deceased` exclusion result (not-met) for a study, or None for a living patient."""
    reason = deceased_on(patient, as_of)
    if reason is None:
        return None
    return CriterionResult(
        id=DECEASED_ID, result="not-met", reason=f"Excluded: {reason}.", kind="automatic",
        evidence=(f"Patient/{patient_id}",), type="exclusion",
    )
