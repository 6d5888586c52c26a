"""Rules on who the patient is: age (partial birth dates give a range)."""

from __future__ import annotations

from service.engine.ages import age_range
from service.engine.context import Context
from service.engine.model import CriterionMapping
from service.engine.reasons import day, result
from service.engine.registry import MAX_YEARS, Param, one_of, ordered, rule
from service.engine.results import CriterionResult, Value


def age(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when every whole-year age the (possibly partial) birth date allows is within the
    bounds.
    """
    birth = ctx.record.birth_date
    ref = f"Patient/{ctx.record.patient_id}"
    low = crit.params.get("min_years")
    high = crit.params.get("max_years")
    bounds = (f"{low}-{high} years" if low is not None and high is not None
              else f"at least {low} years" if low is not None else f"at most {high} years")
    if birth is None:
        return result(crit, "unknown", "No birth date on record, so the age is unknown.",
                      evidence=[ref])
    if birth.day > ctx.as_of:
        return result(crit, "unknown", "The birth date is after the screening date.",
                      evidence=[ref])
    youngest, oldest = age_range(birth.day, birth.precision, ctx.as_of)

    def fits(years: int) -> bool:
        return (low is None or years >= low) and (high is None or years <= high)

    if fits(youngest) and fits(oldest):
        return result(crit, "met", f"Age {oldest} years on {day(ctx.as_of)} (required: {bounds}).",
                      value=Value(oldest, "a"), evidence=[ref])
    # Neither age fits: both are on the same side of the bounds (the ages differ by at most a
    # year and min_years <= max_years is checked when the mapping is loaded).
    if not fits(youngest) and not fits(oldest):
        return result(crit, "not-met",
                      f"Age {oldest} years on {day(ctx.as_of)} is outside the required {bounds}.",
                      value=Value(oldest, "a"), evidence=[ref])
    return result(crit, "unknown",
                  f"The birth date is partial ({ctx.record.patient.get('birthDate')}): age is "
                  f"{youngest} or {oldest} years, which may or may not be within {bounds}.",
                  evidence=[ref])


rule("age", {
    "min_years": Param("int", minimum=0, maximum=MAX_YEARS),
    "max_years": Param("int", minimum=0, maximum=MAX_YEARS),
}, checks=(one_of("min_years", "max_years"), ordered("min_years", "max_years")))(age)
