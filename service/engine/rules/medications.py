"""The refractory-SLE rule: steroid course, hydroxychloroquine and DMARDs, or intolerance."""

from __future__ import annotations

from decimal import Decimal

from service.engine.context import Context
from service.engine.labs import Measurement, fmt, latest_quantity
from service.engine.medications import MedicationUse, has_medication_history, longest_course
from service.engine.model import CriterionMapping
from service.engine.reasons import result
from service.engine.record import as_list, codings, parse_date, ref_key
from service.engine.registry import LOOKBACK, MAX_DAYS, Param, at_most_listed, rule
from service.engine.results import CriterionResult


def _weight(ctx: Context, lookback: int) -> Measurement | None:
    lookup = latest_quantity(ctx.record, ctx.concept("body-weight"), ctx.as_of, lookback)
    return lookup.measurement


def _intolerances(ctx: Context, concepts: set[str]) -> list[tuple[str, str]]:
    found = []
    for resource in ctx.record.by_type.get("AllergyIntolerance", []):
        verification = {c.get("code") for c in codings(resource.get("verificationStatus"))}
        clinical = {c.get("code") for c in codings(resource.get("clinicalStatus"))}
        if verification & {"refuted", "entered-in-error"} or clinical & {"inactive", "resolved"}:
            continue
        recorded = parse_date(resource.get("recordedDate")) or parse_date(
            resource.get("onsetDateTime"))
        if recorded is not None and recorded.day > ctx.as_of:
            continue  # recorded after the as-of date
        codes = [resource.get("code")] + [
            r.get("substance") for r in as_list(resource.get("reaction")) if isinstance(r, dict)]
        for code in codes:
            for coding in codings(code):
                for name in ctx.mappings.concepts_for(coding.get("system"), coding.get("code")):
                    if name in concepts:
                        found.append((name, ref_key(resource)))
    return found


def refractory_sle(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Intolerance to standard treatment, or all of: a high-dose glucocorticoid course,
    the required agents and enough DMARDs.

    Stays bespoke: an all-of of daily-dose, event and distinct-agents would say `not-met`
    when one part fails while another cannot be read, where this rule (docs/decisions.md: a
    partial history is unknown) says `unknown`; and intolerance comes from AllergyIntolerance.
    """
    p = crit.params
    steroids, required = set(p["glucocorticoids"]), set(p.get("required", ()))
    agent_of = {concept: name for name, concepts in p["dmards"] for concept in concepts}
    dmards = set(agent_of)
    intolerant = _intolerances(ctx, steroids | required | dmards)
    if intolerant:
        names = ", ".join(sorted({n for n, _ in intolerant}))
        return result(crit, "met", f"Intolerant to standard treatment ({names}).",
                      evidence=[r for _, r in intolerant])
    if not has_medication_history(ctx.record):
        return result(crit, "unknown", "No medication history is recorded, so refractoriness "
                      "cannot be judged.")
    relevant = [u for u in ctx.uses if set(u.concepts) & (steroids | required | dmards)]
    missing: list[str] = []
    gaps: list[str] = []
    evidence: list[str] = []
    course = _steroid_course(ctx, crit, [u for u in relevant if set(u.concepts) & steroids],
                             missing, gaps, evidence)
    for name in sorted(required):
        found = [u for u in relevant if name in u.concepts]
        if found:
            evidence += [u.ref for u in found]
        else:
            missing.append(name)
    dmard_found = _dmards(relevant, agent_of, p["min_dmards"], missing, gaps, evidence)
    if not missing:
        agents = f", {', '.join(sorted(required))}" if required else ""
        return result(crit, "met",
                      f"High-dose glucocorticoid for {course} days{agents} and "
                      f"{len(dmard_found)} DMARDs ({', '.join(sorted(dmard_found))}) are "
                      "recorded.", evidence=evidence)
    if gaps:
        return result(crit, "unknown",
                      f"Medication history is partial ({'; '.join(dict.fromkeys(gaps))}); not "
                      f"shown: {'; '.join(missing)}.", evidence=[u.ref for u in relevant])
    return result(crit, "not-met",
                  f"The medication history does not show: {'; '.join(missing)}; no intolerance "
                  "to standard treatment is recorded.", evidence=[u.ref for u in relevant])


rule("refractory-sle", {
    "steroid_min_mg_per_kg_day": Param("decimal", required=True, positive=True, maximum=100),
    "steroid_min_days": Param("int", required=True, minimum=1, maximum=MAX_DAYS),
    "required": Param("concepts", kinds=("medication",)),
    "dmards": Param("agents", required=True, kinds=("medication",)),
    "min_dmards": Param("int", required=True, minimum=1, maximum=100),
    "glucocorticoids": Param("concepts", required=True, kinds=("medication",)),
    "weight_lookback_days": LOOKBACK,
}, checks=(at_most_listed("min_dmards", "dmards"),))(refractory_sle)


def _dmards(relevant: list[MedicationUse], agent_of: dict[str, str], minimum: int,
            missing: list[str], gaps: list[str], evidence: list[str]) -> dict[str, list[str]]:
    """DMARD agents shown taken. A use with a single date and no period has an unknown
    duration (docs/decisions.md): it does not show the agent was taken as a therapy, so the agent
    counts only towards `unknown`, never towards `met`."""
    taken: dict[str, list[str]] = {}
    undated: dict[str, list[str]] = {}
    for use in relevant:
        for name in {agent_of[c] for c in set(use.concepts) & set(agent_of)}:
            (taken if use.period_known else undated).setdefault(name, []).append(use.ref)
    unsure = sorted(set(undated) - set(taken))
    if len(taken) >= minimum:
        evidence += [r for refs in taken.values() for r in refs]
        return taken
    missing.append(f"at least {minimum} DMARDs (found {len(taken)}"
                   + (f": {', '.join(sorted(taken))})" if taken else ")"))
    if len(taken) + len(unsure) >= minimum:
        gaps.append(f"duration of {', '.join(unsure)} not recorded")
    return taken


def _steroid_course(ctx: Context, crit: CriterionMapping, steroid_uses: list[MedicationUse],
                    missing: list[str], gaps: list[str], evidence: list[str]) -> int:
    """Longest course at >= the mg/kg/day prednisone-equivalent threshold (days); adds what is
    missing, the gaps that leave it undecided, and the evidence to the caller's lists."""
    p = crit.params
    weight = _weight(ctx, p.get("weight_lookback_days", 365))
    high: list[MedicationUse] = []
    minimum = p["steroid_min_mg_per_kg_day"]
    for use in steroid_uses:
        per_kg = _prednisone_per_kg(ctx, use, weight)
        if per_kg is None:
            if use.daily_mg_range is None and use.daily_mg_per_kg_range is None:
                gaps.append(f"dose of {use.ref} unknown")
            elif _factor(ctx, use) is None:
                # A glucocorticoid the mappings give no factor cannot be compared (as the
                # daily-dose rule says), not passed over as a low dose.
                gaps.append(f"no prednisone equivalent for {use.ref}")
            else:
                gaps.append("no body weight for mg/kg/day")
            continue
        low, high_end = per_kg
        if low < minimum <= high_end:
            # A dose or frequency range whose ends fall on both sides of the threshold.
            gaps.append(f"dose range of {use.ref} spans {fmt(minimum)} mg/kg/day")
        elif low >= minimum:
            if use.period_known:
                high.append(use)
            else:
                gaps.append(f"period of {use.ref} unknown")
    course, course_refs = longest_course(high)
    if course >= p["steroid_min_days"]:
        evidence += course_refs
    else:
        missing.append(f"glucocorticoid >= {fmt(p['steroid_min_mg_per_kg_day'])} mg/kg/day "
                       f"prednisone-equivalent for >= {p['steroid_min_days']} days (longest "
                       f"high-dose course {course} days)")
    return course


def _prednisone_per_kg(ctx: Context, use: MedicationUse, weight: Measurement | None
                       ) -> tuple[Decimal, Decimal] | None:
    """(low, high) prednisone-equivalent mg/kg/day; both ends equal for an exact dose."""
    factor = _factor(ctx, use)
    if factor is None:
        return None
    if use.daily_mg_per_kg_range is not None:
        low, high = use.daily_mg_per_kg_range
        return low * factor, high * factor
    if use.daily_mg_range is None or weight is None or weight.value <= 0:
        return None
    low, high = use.daily_mg_range
    return low * factor / weight.value, high * factor / weight.value


def _factor(ctx: Context, use: MedicationUse) -> Decimal | None:
    """The prednisone equivalent of the use's first agent that has one."""
    equivalents = [factor for n in use.concepts
                   if (factor := ctx.concept(n).prednisone_equivalent) is not None]
    return equivalents[0] if equivalents else None
