"""Medication rules for any agent: daily dose for a duration, cumulative dose, distinct agents."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from service.engine.context import Context
from service.engine.labs import Measurement, fmt, label, latest_quantity
from service.engine.medications import MedicationUse, has_medication_history, longest_course
from service.engine.model import CriterionMapping
from service.engine.reasons import any_of, day, result
from service.engine.registry import (
    LOOKBACK,
    MAX_DAYS,
    Param,
    at_most_listed,
    one_of,
    rule,
)
from service.engine.results import CriterionResult, Value

# No daily dose of any drug reaches 100 g; no cumulative dose 10 kg: the bounds catch typos.
MAX_DAILY_MG = 100000
MAX_CUMULATIVE_MG = 10000000
ADMINISTRATION = "MedicationAdministration/"


def weight(ctx: Context, lookback: int) -> Measurement | None:
    """The latest body weight within the look-back (kg), for doses per kg."""
    return latest_quantity(ctx.record, ctx.concept("body-weight"), ctx.as_of, lookback).measurement


def _names(ctx: Context, names: tuple[str, ...]) -> str:
    return any_of([label(ctx.concept(n)) for n in names])


def _dose(ctx: Context, crit: CriterionMapping, use: MedicationUse, kg: Measurement | None
          ) -> tuple[tuple[Decimal, Decimal] | None, str | None]:
    """The use's daily dose as (lowest, highest) in the rule's unit (mg/day or mg/kg/day), both
    ends equal for an exact dose; or None and why it is unknown. A dose or frequency range
    (doseRange, frequencyMax, periodMax) keeps both ends so that it decides only when every
    value it allows gives the same answer (docs/decisions.md)."""
    factor = Decimal(1)
    if crit.params.get("equivalent") == "prednisone":
        factors = [f for n in use.concepts
                   if n in crit.params["concepts"]
                   and (f := ctx.concept(n).prednisone_equivalent) is not None]
        if not factors:
            return None, f"no prednisone equivalent for {use.ref}"
        factor = factors[0]
    per_kg_wanted = "min_mg_per_kg_day" in crit.params
    mg, mg_per_kg = _bounds(use.daily_mg, use.daily_mg_range), _bounds(
        use.daily_mg_per_kg, use.daily_mg_per_kg_range)
    if mg is None and mg_per_kg is None:
        return None, f"dose of {use.ref} unknown"
    if per_kg_wanted and mg_per_kg is not None:
        return _scaled(mg_per_kg, factor), None
    if not per_kg_wanted and mg is not None:
        return _scaled(mg, factor), None
    if kg is None or kg.value <= 0:
        return None, "no body weight to convert between mg and mg/kg"
    if per_kg_wanted and mg is not None:
        return _scaled(mg, factor / kg.value), None
    assert mg_per_kg is not None
    return _scaled(mg_per_kg, factor * kg.value), None


def _bounds(exact: Decimal | None, span: tuple[Decimal, Decimal] | None
            ) -> tuple[Decimal, Decimal] | None:
    return (exact, exact) if exact is not None else span


def _scaled(bounds: tuple[Decimal, Decimal], factor: Decimal) -> tuple[Decimal, Decimal]:
    return bounds[0] * factor, bounds[1] * factor


def daily_dose(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when the agents were taken at or above the daily dose for at least `min_days`
    continuous days (courses a few days apart join), inside the window if one is given."""
    p = crit.params
    names = p["concepts"]
    per_kg = "min_mg_per_kg_day" in p
    minimum = p["min_mg_per_kg_day"] if per_kg else p["min_mg_per_day"]
    unit = "mg/kg/day" if per_kg else "mg/day"
    within = p.get("within_days")
    since = ctx.as_of - timedelta(days=within) if within else None
    window = f" in the {within} days before {day(ctx.as_of)}" if within else ""
    what = f"{_names(ctx, names)} at >= {fmt(minimum)} {unit}"
    if not has_medication_history(ctx.record):
        return result(crit, "unknown", "No medication history is recorded, so the dose of "
                      f"{_names(ctx, names)} cannot be judged.")
    uses = [u for u in ctx.uses if set(u.concepts) & set(names)]
    kg = weight(ctx, p.get("weight_lookback_days", 365))
    qualifying: list[MedicationUse] = []
    gaps: list[str] = []
    for use in uses:
        dose, problem = _dose(ctx, crit, use, kg)
        if dose is None:
            gaps.append(problem or f"dose of {use.ref} unknown")
            continue
        lowest, highest = dose
        if highest < minimum:
            continue
        if lowest < minimum:  # a range whose ends fall on both sides of the threshold
            gaps.append(f"dose range of {use.ref} ({fmt(lowest)}-{fmt(highest)} {unit}) "
                        f"spans {fmt(minimum)} {unit}")
            continue
        if not use.period_known:
            gaps.append(f"period of {use.ref} unknown")
            continue
        assert use.start is not None and use.end is not None
        start = max(use.start, since) if since else use.start
        if use.end < start:
            continue  # ended before the window
        qualifying.append(replace(use, start=start))
    course, refs = longest_course(qualifying)
    if course >= p["min_days"]:
        return result(crit, "met", f"{what} for {course} days{window}.",
                      value=Value(course, "d"), evidence=list(refs))
    longest = f"the longest such course is {course} days, {p['min_days']} needed"
    if gaps:
        return result(crit, "unknown", f"Medication history is partial "
                      f"({'; '.join(dict.fromkeys(gaps))}); {longest}.",
                      evidence=[u.ref for u in uses])
    if not uses:
        return result(crit, "not-met", f"No {_names(ctx, names)} is recorded.")
    return result(crit, "not-met", f"No course of {what} for {p['min_days']} days{window}: "
                  f"{longest}.", value=Value(course, "d"), evidence=[u.ref for u in uses])


rule("daily-dose", {
    "concepts": Param("concepts", required=True, kinds=("medication",)),
    "min_mg_per_day": Param("decimal", positive=True, maximum=MAX_DAILY_MG),
    "min_mg_per_kg_day": Param("decimal", positive=True, maximum=1000),
    "min_days": Param("int", required=True, minimum=1, maximum=MAX_DAYS),
    # Only days inside this window before the as-of date count; absent: any time.
    "within_days": Param("int", minimum=1, maximum=MAX_DAYS),
    # Convert each agent to prednisone-equivalent mg with its concept's factor.
    "equivalent": Param("str", choices=("prednisone",)),
    "weight_lookback_days": LOOKBACK,
}, checks=(one_of("min_mg_per_day", "min_mg_per_kg_day"),
           lambda p: ("min_mg_per_kg_day", "give min_mg_per_day or min_mg_per_kg_day, not both")
           if "min_mg_per_day" in p and "min_mg_per_kg_day" in p else None))(daily_dose)


def cumulative_dose(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when the doses given (MedicationAdministration) in the window add up to `min_mg`;
    orders or statements without administrations cannot show a dose given: unknown."""
    p = crit.params
    names = p["concepts"]
    since = ctx.as_of - timedelta(days=p["within_days"])
    window = f"in the {p['within_days']} days before {day(ctx.as_of)}"
    uses = [u for u in ctx.uses if set(u.concepts) & set(names)]
    given = [u for u in uses if u.ref.startswith(ADMINISTRATION)
             and u.start is not None and since <= u.start <= ctx.as_of]
    kg = weight(ctx, p.get("weight_lookback_days", 365))
    total = Decimal(0)
    unknown: list[str] = []
    for use in given:
        # The amount given, not the per-day share a series spreads it into.
        mg = use.given_mg if use.given_mg is not None else use.daily_mg
        mg_per_kg = (use.given_mg_per_kg if use.given_mg_per_kg is not None
                     else use.daily_mg_per_kg)
        if mg is not None:
            total += mg
        elif mg_per_kg is not None and kg is not None and kg.value > 0:
            total += mg_per_kg * kg.value
        else:
            unknown.append(use.ref)
    what = _names(ctx, names)
    summed = f"{fmt(total)} mg of {what} given {window} ({len(given)} administration(s))"
    value = Value(total, "mg")
    if total >= p["min_mg"]:
        return result(crit, "met", f"{summed}, at least {fmt(p['min_mg'])} mg.", value=value,
                      evidence=[u.ref for u in given])
    if unknown:
        return result(crit, "unknown", f"{summed}; the dose of {', '.join(unknown)} is not "
                      "recorded.", value=value, evidence=[u.ref for u in given])
    ordered = [u for u in uses if not u.ref.startswith(ADMINISTRATION)
               and (u.end or u.start or ctx.as_of) >= since]
    if ordered:
        return result(crit, "unknown", f"{summed}; {what} is ordered or recorded as taken "
                      f"({ordered[0].ref}) but its administrations are not recorded.",
                      value=value, evidence=[u.ref for u in given + ordered])
    return result(crit, "not-met", f"{summed}, below {fmt(p['min_mg'])} mg.", value=value,
                  evidence=[u.ref for u in given])


rule("cumulative-dose", {
    "concepts": Param("concepts", required=True, kinds=("medication",)),
    "min_mg": Param("decimal", required=True, positive=True, maximum=MAX_CUMULATIVE_MG),
    "within_days": Param("int", required=True, minimum=1, maximum=MAX_DAYS),
    "weight_lookback_days": LOOKBACK,
})(cumulative_dose)


def distinct_agents(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when at least `min_agents` agents of the list were each taken for more than
    `more_than_days` (longest continuous course); unknown when durations are missing."""
    p = crit.params
    if not has_medication_history(ctx.record):
        return result(crit, "unknown", "No medication history is recorded.")
    taken: list[str] = []
    short: list[str] = []
    partial: list[str] = []
    evidence: list[str] = []
    for agent, concepts in p["agents"]:
        uses = [u for u in ctx.uses if set(u.concepts) & set(concepts)]
        if not uses:
            continue
        days, refs = longest_course(uses)
        if days > p["more_than_days"]:
            taken.append(f"{agent} ({days} days)")
            evidence += refs
        elif any(not u.period_known for u in uses):
            partial.append(agent)
            evidence += [u.ref for u in uses]
        else:
            short.append(f"{agent} ({days} days)")
            evidence += [u.ref for u in uses]
    days = p["more_than_days"]
    if len(taken) >= p["min_agents"]:
        return result(crit, "met", f"{len(taken)} of the listed agents taken for more than "
                      f"{days} days: {', '.join(taken)}.", evidence=evidence)
    if len(taken) + len(partial) >= p["min_agents"]:
        return result(crit, "unknown", f"Only {len(taken)} of the listed agents shown for more "
                      f"than {days} days; the duration of {', '.join(partial)} is not "
                      "recorded.", evidence=evidence)
    listed = ", ".join(taken + short) or "none of the listed agents"
    return result(crit, "not-met", f"Fewer than {p['min_agents']} of the listed agents taken "
                  f"for more than {days} days ({listed}).", evidence=evidence)


rule("distinct-agents", {
    "agents": Param("agents", required=True, kinds=("medication",)),
    "min_agents": Param("int", required=True, minimum=1, maximum=100),
    "more_than_days": Param("int", required=True, minimum=0, maximum=MAX_DAYS),
}, checks=(at_most_listed("min_agents", "agents"),))(distinct_agents)
