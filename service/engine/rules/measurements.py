"""Rules on measured values: thresholds, x ULN, proteinuria, presence and scores."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from service.engine.context import Context
from service.engine.labs import Lookup, Measurement, compare, fmt, label, latest_quantity
from service.engine.model import CriterionMapping
from service.engine.reasons import FAIL_WORDS, OPERATOR_WORDS, cap, day, result, with_unit
from service.engine.record import ref_key
from service.engine.registry import LOOKBACK, MAX_DAYS, Param, rule, together
from service.engine.results import CriterionResult, Result, Value
from service.engine.rules.diagnoses import conditions, display, written_only
from service.engine.sledai import with_lab_lower_bound
from service.engine.uln import find_lln, find_uln

# A limit above 100 x ULN is no eligibility limit.
MAX_MULTIPLE = 100


def lookup_unknown(crit: CriterionMapping, lookup: Lookup) -> CriterionResult:
    text = lookup.problem or "no value"
    return result(crit, "unknown", text[0].upper() + text[1:] + ".", evidence=lookup.evidence)


def _value(m: Measurement) -> Value:
    return Value(m.value, m.unit)


def _washout(ctx: Context, crit: CriterionMapping, m: Measurement) -> CriterionResult | None:
    names = crit.params.get("washout_concepts")
    days = crit.params.get("washout_days")
    if not names or days is None:
        return None
    window_start = m.when - timedelta(days=days)
    for use in ctx.uses:
        if not set(use.concepts) & set(names):
            continue
        start, end = use.start, use.end or use.start
        agent = cap(label(ctx.concept(next(n for n in use.concepts if n in names))))
        if start is None:
            return result(
                crit, "unknown",
                f"{agent} is recorded without a date ({use.ref}), so the {days}-day washout before "
                f"the count on {day(m.when)} cannot be checked.",
                value=_value(m), evidence=[m.ref, use.ref])
        if start <= m.when and (end or start) >= window_start:
            return result(
                crit, "unknown",
                f"{cap(label(ctx.concept(crit.params['concept'])))} {m.original} on "
                f"{day(m.when)} was measured within {days} days of {agent} ({use.ref}); repeat "
                "the count after washout.",
                value=_value(m), evidence=[m.ref, use.ref])
    return None


def threshold(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when the newest value in the look-back compares true against an absolute limit."""
    concept = ctx.concept(crit.params["concept"])
    lookup = latest_quantity(ctx.record, concept, ctx.as_of, crit.params.get("lookback_days"))
    if lookup.measurement is None:
        if concept.name == "sledai-2k":  # no score: the reason gives the lab items' lower bound
            return with_lab_lower_bound(lookup_unknown(crit, lookup), ctx.record, ctx.as_of,
                                        ctx.sledai_window_days)
        return lookup_unknown(crit, lookup)
    m = lookup.measurement
    washed = _washout(ctx, crit, m)
    if washed is not None:
        return washed
    op, limit = crit.params["operator"], crit.params["threshold"]
    verdict = compare(m.value, m.comparator, op, limit, m.high)
    shown = with_unit(m.shown, m.unit)
    name = label(concept)
    limit_text = with_unit(fmt(limit), concept.unit)
    if verdict is None:
        return result(crit, "unknown",
                      f"{cap(name)} {shown} on {day(m.when)} cannot be compared with "
                      f"{limit_text}.", value=_value(m), evidence=[m.ref])
    if verdict:
        return result(crit, "met",
                      f"{cap(name)} {shown} on {day(m.when)} is {OPERATOR_WORDS[op]} "
                      f"{limit_text}.", value=_value(m), evidence=[m.ref])
    return result(crit, "not-met",
                  f"{cap(name)} {shown} on {day(m.when)} is {FAIL_WORDS[op]} "
                  f"{limit_text}.", value=_value(m), evidence=[m.ref])


rule("threshold", {
    "concept": Param("concept", required=True, kinds=("observation",), needs_unit=True),
    "operator": Param("str", required=True, choices=tuple(OPERATOR_WORDS)),
    "threshold": Param("decimal", required=True, minimum=0),
    "lookback_days": LOOKBACK,
    "washout_concepts": Param("concepts", kinds=("medication",)),
    "washout_days": Param("int", minimum=1, maximum=MAX_DAYS),
}, checks=(together("washout_concepts", "washout_days"),))(threshold)


def uln_multiple(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when the newest value is at most a multiple of its ULN (own range, else table)."""
    concept = ctx.concept(crit.params["concept"])
    name = label(concept)
    lookup = latest_quantity(ctx.record, concept, ctx.as_of, crit.params.get("lookback_days"))
    if lookup.measurement is None:
        return lookup_unknown(crit, lookup)
    m = lookup.measurement
    uln, problem = find_uln(ctx.record, ctx.mappings, concept, m)
    if uln is None:
        return result(crit, "unknown",
                      f"{cap(name)} {m.original} on {day(m.when)} has no ULN: {problem}.",
                      value=_value(m), evidence=[m.ref])
    multiple = crit.params["max_multiple"]
    alternative = [e for n in crit.params.get("alternative_if", ()) for e in conditions(ctx, n)]
    evidence = [m.ref]
    why = ""
    if alternative and "alternative_max_multiple" in crit.params:
        multiple = crit.params["alternative_max_multiple"]
        evidence += [e.ref for e in alternative]
        why = f" (limit for {display(alternative[0].resource)})"
    limit = uln.value * multiple
    ratio = (m.value / uln.value) if uln.value and m.high is None else None
    ratio_text = f" = {fmt(ratio)} x ULN" if ratio is not None else ""
    shown = with_unit(m.shown, m.unit)
    uln_shown = with_unit(fmt(uln.value), uln.unit)
    text = (f"{cap(name)} {shown} on {day(m.when)}{ratio_text} (ULN {uln_shown} from "
            f"{uln.source})")
    verdict = compare(m.value, m.comparator, "<=", limit, m.high)
    value, uln_value, uln_source = _value(m), Value(uln.value, uln.unit), uln.source

    def said(outcome: Result, reason: str, refs: list[str]) -> CriterionResult:
        return result(crit, outcome, reason, evidence=refs, value=value, uln=uln_value,
                      uln_source=uln_source)

    if verdict is None:
        return said("unknown", f"{text} cannot be compared with {fmt(multiple)} x ULN{why}.",
                    evidence)
    if verdict:
        return said("met", f"{text} is at most {fmt(multiple)} x ULN{why}.", evidence)
    review = [e for n in crit.params.get("review_if", ()) for e in conditions(ctx, n)]
    if review:
        return said("unknown",
                    f"{text} is above {fmt(multiple)} x ULN{why}, but "
                    f"{display(review[0].resource)} "
                    "is recorded: the protocol makes an exception for it, so the investigator "
                    "must review.", evidence + [e.ref for e in review])
    exceptions = tuple(crit.params.get("review_if", ())) + (
        () if alternative else tuple(crit.params.get("alternative_if", ())))
    written = written_only(ctx, exceptions)
    if written:
        # An exception written only as text is not absent (docs/decisions.md).
        return said("unknown",
                    f"{text} is above {fmt(multiple)} x ULN{why}, but {display(written[0])} "
                    f"is recorded as text only ({ref_key(written[0])}), and the protocol makes "
                    "an exception for it: the investigator must review.",
                    evidence + [ref_key(r) for r in written])
    return said("not-met", f"{text} is above {fmt(multiple)} x ULN{why}.", evidence)


rule("uln-multiple", {
    "concept": Param("concept", required=True, kinds=("observation",), needs_unit=True),
    "max_multiple": Param("decimal", required=True, positive=True, maximum=MAX_MULTIPLE),
    "lookback_days": LOOKBACK,
    "review_if": Param("concepts", kinds=("condition",)),
    "alternative_if": Param("concepts", kinds=("condition",)),
    "alternative_max_multiple": Param("decimal", positive=True, maximum=MAX_MULTIPLE),
}, checks=(together("alternative_if", "alternative_max_multiple"),))(uln_multiple)


def proteinuria(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """The most recent proteinuria measure, UPCR or 24 h protein, decides (docs/decisions.md).

    Stays bespoke: any-of would be met by an older UPCR above its limit although the newer
    24 h protein shows remission; here only the newest measure of either kind decides.
    """
    p = crit.params
    candidates = []
    problems = []
    evidence: list[str] = []
    for concept_key, min_key in (("upcr_concept", "upcr_min"),
                                 ("protein_24h_concept", "protein_24h_min")):
        if concept_key not in p:
            continue
        concept = ctx.concept(p[concept_key])
        lookup = latest_quantity(ctx.record, concept, ctx.as_of, p.get("lookback_days"))
        if lookup.measurement is None:
            problems.append(lookup.problem or "")
            evidence += lookup.evidence
            continue
        candidates.append((lookup.measurement, p[min_key], concept))
    if not candidates:
        return result(crit, "unknown", cap("; ".join(problems)) + ".", evidence=evidence)
    candidates.sort(key=lambda c: c[0].when, reverse=True)
    m, limit, concept = candidates[0]
    name = label(concept)
    verdict = compare(m.value, m.comparator, ">=", limit, m.high)
    text = f"{cap(name)} {with_unit(m.shown, m.unit)} on {day(m.when)}"
    if verdict is None:
        return result(crit, "unknown", f"{text} cannot be compared with {fmt(limit)} {m.unit}.",
                      value=_value(m), evidence=[m.ref])
    if verdict:
        return result(crit, "met", f"{text} is at least {fmt(limit)} {m.unit}.",
                      value=_value(m), evidence=[m.ref])
    # What it means ("proteinuria persists", "renal response") is the mapping's `wording`.
    return result(crit, "not-met", f"{text} is below {fmt(limit)} {m.unit}.",
                  value=_value(m), evidence=[m.ref])


rule("proteinuria", {
    "upcr_concept": Param("concept", required=True, kinds=("observation",), needs_unit=True),
    "upcr_min": Param("decimal", required=True, minimum=0),
    "protein_24h_concept": Param("concept", kinds=("observation",), needs_unit=True),
    "protein_24h_min": Param("decimal", minimum=0),
    "lookback_days": LOOKBACK,
}, checks=(together("protein_24h_concept", "protein_24h_min"),))(proteinuria)


def positive(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when the newest value of any of the concepts is above zero."""
    found = []
    problems = []
    evidence: list[str] = []
    for name in crit.params["concepts"]:
        lookup = latest_quantity(ctx.record, ctx.concept(name), ctx.as_of,
                                 crit.params.get("lookback_days"))
        if lookup.measurement is None:
            problems.append(lookup.problem or "")
            evidence += lookup.evidence  # a stale or unreadable result is shown, as elsewhere
        else:
            found.append((lookup.measurement, ctx.concept(name)))
    if not found:
        return result(crit, "unknown", cap("; ".join(problems)) + ".", evidence=evidence)
    found.sort(key=lambda f: f[0].when, reverse=True)
    m, concept = found[0]
    text = f"{cap(label(concept))} {with_unit(m.shown, m.unit)} on {day(m.when)}"
    verdict = compare(m.value, m.comparator, ">", Decimal(0), m.high)
    if verdict is None:
        return result(crit, "unknown", f"{text} cannot be read as positive or not.",
                      value=_value(m), evidence=[m.ref])
    # What a positive or zero value means is the mapping's `wording` (decide.py adds it).
    return result(crit, "met" if verdict else "not-met",
                  f"{text} is {'above' if verdict else 'not above'} 0.", value=_value(m),
                  evidence=[m.ref])


rule("positive", {
    "concepts": Param("concepts", required=True, kinds=("observation",), needs_unit=True),
    "lookback_days": LOOKBACK,
})(positive)


def ecog(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when the newest ECOG (or an equivalent score converted) is at most the maximum."""
    p = crit.params
    maximum = p["max_score"]
    candidates: list[tuple[Measurement, Decimal, str]] = []
    problems = []
    lookup = latest_quantity(ctx.record, ctx.concept(p["concept"]), ctx.as_of,
                             p.get("lookback_days"))
    if lookup.measurement is not None:
        candidates.append((lookup.measurement, lookup.measurement.value, "ECOG"))
    else:
        problems.append(lookup.problem or "")
    for name in p.get("equivalents", ()):
        other = latest_quantity(ctx.record, ctx.concept(name), ctx.as_of, p.get("lookback_days"))
        if other.measurement is None:
            continue
        score = other.measurement.value
        for floor, equivalent in p.get("equivalence", ()):
            if score >= floor:
                candidates.append((other.measurement, equivalent,
                                   f"{cap(label(ctx.concept(name)))} "
                                   f"{fmt(score)} (ECOG equivalent"))
                break
    if not candidates:
        return result(crit, "unknown", cap(problems[0] if problems else "no ECOG") + ".",
                      evidence=lookup.evidence)
    candidates.sort(key=lambda c: c[0].when, reverse=True)
    m, score, name = candidates[0]
    shown = f"{name} {fmt(score)}" if name == "ECOG" else f"{name} {fmt(score)})"
    if score <= maximum:
        return result(crit, "met", f"{shown} on {day(m.when)} is within 0-{fmt(maximum)}.",
                      value=Value(score), evidence=[m.ref])
    return result(crit, "not-met", f"{shown} on {day(m.when)} is above {fmt(maximum)}.",
                  value=Value(score), evidence=[m.ref])


rule("ecog", {
    "concept": Param("concept", required=True, kinds=("observation",), needs_unit=True),
    "max_score": Param("decimal", required=True, minimum=0, maximum=5),  # ECOG runs 0-5
    "equivalents": Param("concepts", kinds=("observation",), needs_unit=True),
    # [score, ECOG] pairs: Lansky/Karnofsky run 0-100.
    "equivalence": Param("pairs", minimum=0, maximum=100),
    "lookback_days": LOOKBACK,
}, checks=(together("equivalents", "equivalence"),))(ecog)


def normal_limit(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """The latest value against a multiple of its lower or upper limit of normal: the
    result's own referenceRange, else (upper limit only) the age/sex table."""
    concept = ctx.concept(crit.params["concept"])
    name = label(concept)
    lookup = latest_quantity(ctx.record, concept, ctx.as_of, crit.params.get("lookback_days"))
    if lookup.measurement is None:
        return lookup_unknown(crit, lookup)
    m = lookup.measurement
    side = crit.params["limit"]
    if side == "high":
        bound, problem = find_uln(ctx.record, ctx.mappings, concept, m)
    else:
        bound, problem = find_lln(concept, m)
    if bound is None:
        return result(crit, "unknown", f"{cap(name)} {m.original} on {day(m.when)} has no "
                      f"{'upper' if side == 'high' else 'lower'} limit of normal: {problem}.",
                      value=_value(m), evidence=[m.ref])
    multiple = crit.params.get("multiple", Decimal(1))
    op = crit.params["operator"]
    what = "ULN" if side == "high" else "LLN"
    limit_text = (f"{fmt(multiple)} x " if multiple != 1 else "") + what
    shown = with_unit(m.shown, m.unit)
    bound_text = with_unit(fmt(bound.value), bound.unit)
    text = f"{cap(name)} {shown} on {day(m.when)} ({what} {bound_text} from {bound.source})"
    verdict = compare(m.value, m.comparator, op, bound.value * multiple, m.high)
    if verdict is None:
        return result(crit, "unknown", f"{text} cannot be compared with {limit_text}.",
                      value=_value(m), evidence=[m.ref])
    words = OPERATOR_WORDS if verdict else FAIL_WORDS
    return result(crit, "met" if verdict else "not-met",
                  f"{text} is {words[op]} {limit_text}.", value=_value(m), evidence=[m.ref])


rule("normal-limit", {
    "concept": Param("concept", required=True, kinds=("observation",), needs_unit=True),
    # Compared with the lower ("low") or upper ("high") limit of normal of the result.
    "limit": Param("str", required=True, choices=("low", "high")),
    "operator": Param("str", required=True, choices=tuple(OPERATOR_WORDS)),
    "multiple": Param("decimal", positive=True, maximum=MAX_MULTIPLE),
    "lookback_days": LOOKBACK,
})(normal_limit)
