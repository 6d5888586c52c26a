"""The eGFR rule: a reported eGFR, or bedside Schwartz from creatinine and height."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from service.engine.ages import age_range
from service.engine.context import Context
from service.engine.labs import compare, fmt, latest_entries, latest_quantity
from service.engine.model import CriterionMapping
from service.engine.reasons import day, result
from service.engine.record import Entry, PatientRecord, ref_key
from service.engine.registry import LOOKBACK, MAX_DAYS, MAX_YEARS, Param, rule
from service.engine.results import CriterionResult, Value
from service.engine.rules.diagnoses import conditions, display, written_only


def egfr(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when the reported eGFR, else bedside Schwartz, reaches the threshold."""
    limit = crit.params["threshold"]
    unit = ctx.concept("egfr").unit or "mL/min/{1.73_m2}"
    reported = latest_quantity(ctx.record, ctx.concept("egfr"), ctx.as_of,
                               crit.params.get("lookback_days"))
    evidence: list[str] = []
    how = ""
    if reported.measurement is not None:
        m = reported.measurement
        value, comparator, when, high = m.value, m.comparator, m.when, m.high
        evidence = [m.ref]
        how = f"Reported eGFR {m.shown} {unit} on {day(when)}"
    else:
        schwartz, problem, refs = _schwartz(ctx, crit)
        if schwartz is None:
            missing = reported.problem or "no eGFR"
            return result(crit, "unknown",
                          f"{missing[0].upper() + missing[1:]}, and bedside Schwartz cannot be "
                          f"computed: {problem}.", evidence=refs)
        value, comparator, when, how = schwartz
        high = None
        evidence = refs
    verdict = compare(value, comparator, ">=", limit, high)
    # A computed eGFR is shown to one decimal; the comparison above used the exact value.
    shown_value = value if reported.measurement is not None else value.quantize(Decimal("0.1"))
    out_value = Value(shown_value, unit)
    if verdict is None:
        return result(crit, "unknown", f"{how} cannot be compared with {fmt(limit)}.",
                      value=out_value, evidence=evidence)
    if verdict:
        return result(crit, "met", f"{how} is at least {fmt(limit)}.", value=out_value,
                      evidence=evidence)
    review = [e for n in crit.params.get("review_if", ()) for e in conditions(ctx, n)]
    if review:
        return result(crit, "unknown",
                      f"{how} is below {fmt(limit)}, but {display(review[0].resource)} is "
                      f"recorded ({review[0].ref}): the protocol makes an exception for it, so "
                      "the investigator must review.", value=out_value,
                      evidence=evidence + [e.ref for e in review])
    written = written_only(ctx, tuple(crit.params.get("review_if", ())))
    if written:
        # The exception's diagnosis written only as text is not absent (docs/decisions.md).
        return result(crit, "unknown",
                      f"{how} is below {fmt(limit)}, but {display(written[0])} is recorded as "
                      f"text only ({ref_key(written[0])}): the protocol makes an exception for "
                      "it, so the investigator must review.", value=out_value,
                      evidence=evidence + [ref_key(r) for r in written])
    return result(crit, "not-met", f"{how} is below {fmt(limit)}.", value=out_value,
                  evidence=evidence)


rule("egfr", {
    "threshold": Param("decimal", required=True, positive=True, maximum=200),
    # Bedside Schwartz k is 0.413 (Schwartz 2009); the older formulas used 0.33-0.7.
    "schwartz_k": Param("decimal", required=True, positive=True, maximum=1),
    "schwartz_max_age": Param("int", minimum=0, maximum=MAX_YEARS),
    "height_window_days": Param("int", minimum=0, maximum=MAX_DAYS),
    "review_if": Param("concepts", kinds=("condition",)),
    "lookback_days": LOOKBACK,
})(egfr)


def _schwartz(ctx: Context, crit: CriterionMapping
              ) -> tuple[tuple[Decimal, str | None, date, str] | None, str, list[str]]:
    """Bedside Schwartz eGFR from the latest creatinine and a height near it."""
    max_age = crit.params.get("schwartz_max_age")
    birth = ctx.record.birth_date
    if max_age is not None and birth is not None:
        _, oldest = age_range(birth.day, birth.precision, ctx.as_of)
        if oldest > max_age:
            return None, f"the patient is over {max_age}, the pediatric formula does not apply", []
    creat = latest_quantity(ctx.record, ctx.concept("creatinine"), ctx.as_of,
                            crit.params.get("lookback_days"))
    if creat.measurement is None:
        return None, creat.problem or "no creatinine", list(creat.evidence)
    c = creat.measurement
    if c.comparator is not None or c.value <= 0:
        return None, f"creatinine {c.original} is not an exact positive value", [c.ref]
    window = crit.params.get("height_window_days", 180)
    height_concept = ctx.concept("body-height")
    heights, _ = latest_entries(ctx.record, height_concept, ctx.as_of)
    best = None
    for entry in heights:
        assert entry.when is not None
        if abs((entry.when.day - c.when).days) > window:
            continue
        lookup = latest_quantity(_single(ctx.record, entry, height_concept.name), height_concept,
                                 entry.when.day, 0)
        if lookup.measurement is not None:
            best = lookup.measurement
            break
    if best is None:
        return None, f"no body height within {window} days of the creatinine on {day(c.when)}", [
            c.ref]
    k = crit.params["schwartz_k"]
    # Compared exactly; rounded only where it is shown.
    value = k * best.value / c.value
    shown = fmt(value.quantize(Decimal("0.1")))
    how = (f"Bedside Schwartz eGFR {shown} mL/min/1.73 m2 ({fmt(k)} x height "
           f"{fmt(best.value)} cm on {day(best.when)} / creatinine {fmt(c.value)} mg/dL on "
           f"{day(c.when)})")
    return (value, None, c.when, how), "", [c.ref, best.ref]


def _single(record: PatientRecord, entry: Entry, concept: str) -> PatientRecord:
    """A view of the record where a concept has only the given entry (to read one value)."""
    # A copy of every field but one: a field added to PatientRecord is carried too.
    return replace(record, by_concept={concept: [entry]})
