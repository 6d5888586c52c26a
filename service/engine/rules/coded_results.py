"""Rules on coded or ratio results: positive/negative tests, pregnancy test, ANA titer."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from service.engine.ages import age_range
from service.engine.coded import coded_answer
from service.engine.context import Context
from service.engine.labs import (
    compare,
    fmt,
    in_window,
    label,
    latest_entries,
    observation_value,
    ratio_denominator,
    searched_codes,
    titer_below,
)
from service.engine.model import CriterionMapping
from service.engine.numbers import to_decimal
from service.engine.reasons import any_of, cap, day, result
from service.engine.record import Entry, as_dict, as_list
from service.engine.registry import LOOKBACK, MAX_DAYS, MAX_YEARS, Param, rule
from service.engine.results import CriterionResult, Value


def pregnancy(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met with a negative hCG in the window for females from the minimum age; males and younger
    girls: not applicable.
    """
    gender = ctx.record.gender
    min_age = crit.params.get("min_age_years", 10)
    ref = f"Patient/{ctx.record.patient_id}"
    if gender == "male":
        return result(crit, "met", "Not applicable: the patient is male.", evidence=[ref])
    if gender != "female":
        return result(crit, "unknown", "The sex is not recorded as female or male, so it is "
                      "unknown whether a pregnancy test is needed.", evidence=[ref])
    birth = ctx.record.birth_date
    if birth is not None:
        youngest, oldest = age_range(birth.day, birth.precision, ctx.as_of)
        if oldest < min_age:
            return result(crit, "met",
                          f"Not applicable: the patient is {oldest} years old (applies from "
                          f"{min_age}).", evidence=[ref])
    window = crit.params.get("window_days", 30)
    concept = ctx.concept(crit.params["concept"])
    entries, _ = latest_entries(ctx.record, concept, ctx.as_of)
    for entry in entries:
        assert entry.when is not None
        if not in_window(entry.when.day, ctx.as_of, window):
            return result(crit, "unknown",
                          f"No pregnancy test within {window} days (latest on "
                          f"{day(entry.when.day)}).", evidence=[entry.ref])
        outcome = coded_answer(entry.resource)
        if outcome == "negative":
            return result(crit, "met", f"Negative pregnancy test on {day(entry.when.day)}.",
                          value=Value("negative"), evidence=[entry.ref])
        if outcome == "positive":
            return result(crit, "not-met", f"Positive pregnancy test on {day(entry.when.day)}.",
                          value=Value("positive"), evidence=[entry.ref])
    if entries:
        return result(crit, "unknown", "The latest pregnancy test has no readable result.",
                      evidence=[entries[0].ref])
    return result(crit, "unknown", f"No pregnancy test within {window} days under the codes "
                  f"searched ({searched_codes(concept)}).")


rule("pregnancy", {
    "concept": Param("concept", required=True, kinds=("observation",)),
    "min_age_years": Param("int", minimum=0, maximum=MAX_YEARS),
    "window_days": Param("int", minimum=0, maximum=MAX_DAYS),
})(pregnancy)


def titer(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when the newest titer (ratio, quantity or text) reaches 1:min_denominator."""
    concept = ctx.concept(crit.params["concept"])
    name = label(concept)
    minimum = crit.params["min_denominator"]
    lookback = crit.params.get("lookback_days", concept.lookback_days)
    entries, _ = latest_entries(ctx.record, concept, ctx.as_of)
    for entry in entries:
        assert entry.when is not None
        denominator, shown = ratio_denominator(entry.resource)
        if denominator is None:
            below = titer_below(entry.resource)
            if below is None:
                continue
            return _below(crit, entry, below, minimum, lookback, ctx.as_of)
        if not in_window(entry.when.day, ctx.as_of, lookback):
            return result(crit, "unknown", f"No {name} within {lookback} days (latest "
                          f"{shown} on {day(entry.when.day)} is stale).", evidence=[entry.ref])
        value = Value(f"1:{fmt(denominator)}")
        if denominator >= minimum:
            return result(crit, "met", f"{cap(name)} {shown} on {day(entry.when.day)} is at least "
                          f"1:{fmt(minimum)}.", value=value, evidence=[entry.ref])
        return result(crit, "not-met", f"{cap(name)} {shown} on {day(entry.when.day)} is below "
                      f"1:{fmt(minimum)}.", value=value, evidence=[entry.ref])
    if entries:
        return result(crit, "unknown", f"The latest {name} result has no readable titer.",
                      evidence=[entries[0].ref])
    presence = crit.params.get("presence_concept")
    if presence and ctx.record.entries(presence):
        ref = ctx.record.entries(presence)[0].ref
        return result(crit, "unknown", f"Only {label(ctx.concept(presence))} is recorded; a "
                      f"titer is needed to show >= 1:{fmt(minimum)}.", evidence=[ref])
    return result(crit, "unknown", f"No {name} on record under the codes searched "
                  f"({searched_codes(concept)}).")


rule("titer", {
    "concept": Param("concept", required=True, kinds=("observation",)),
    "presence_concept": Param("concept", kinds=("observation",)),
    # Titers are reported up to 1:40960 or so; 1:100000 is past any laboratory's last dilution.
    "min_denominator": Param("decimal", required=True, minimum=1, maximum=100000),
    "lookback_days": LOOKBACK,
})(titer)


def _below(crit: CriterionMapping, entry: Entry, below: tuple[Decimal, str], minimum: Decimal,
           lookback: int, as_of: date) -> CriterionResult:
    """A titer reported below a dilution ("<1:40") or negative."""
    assert entry.when is not None
    denominator, shown = below
    when = day(entry.when.day)
    if not in_window(entry.when.day, as_of, lookback):
        return result(crit, "unknown", f"No ANA titer within {lookback} days (latest "
                      f"{shown} on {when} is stale).", evidence=[entry.ref])
    if shown == "negative":
        # Negative is below the laboratory's screening dilution, 1:40 or 1:80 on HEp-2 cells
        # (the 2019 EULAR/ACR entry criterion is ANA >= 1:80): below any minimum from 1:80.
        if minimum >= 80:
            return result(crit, "not-met", f"ANA reported negative on {when}: below "
                          f"1:{fmt(minimum)}.", value=Value("negative"), evidence=[entry.ref])
        return result(crit, "unknown", f"ANA reported negative on {when}, without the "
                      f"screening dilution; 1:{fmt(minimum)} cannot be judged.",
                      evidence=[entry.ref])
    if denominator <= minimum:
        return result(crit, "not-met", f"ANA titer {shown} on {when} is below "
                      f"1:{fmt(minimum)}.", value=Value(shown), evidence=[entry.ref])
    return result(crit, "unknown", f"ANA titer {shown} on {when} may or may not reach "
                  f"1:{fmt(minimum)}.", value=Value(shown), evidence=[entry.ref])


ANSWERS = ("positive", "negative")


def _answer(entry_resource: dict[str, Any]) -> str | None:
    """Positive/negative from a coded answer, else a number against its referenceRange.high."""
    coded = coded_answer(entry_resource)
    if coded is not None:
        return coded
    number, _, comparator = observation_value(entry_resource)
    if number is None:
        return None
    for item in as_list(entry_resource.get("referenceRange")):
        high = to_decimal(as_dict(as_dict(item).get("high")).get("value"))
        if high is None:
            continue
        # The number and its range come from the same result, in the same unit.
        verdict = compare(number, comparator, ">", high)
        if verdict is not None:
            return "positive" if verdict else "negative"
    return None


def coded_result(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """The latest result in the window read as positive or negative (coded answer, text,
    interpretation POS/NEG, or a number above its reference range high)."""
    wanted = crit.params["answer"]
    names = crit.params["concepts"]
    looked = any_of([label(ctx.concept(n)) for n in names])
    found = []
    for name in names:
        concept = ctx.concept(name)
        lookback = crit.params.get("lookback_days", concept.lookback_days)
        entries, _ = latest_entries(ctx.record, concept, ctx.as_of)
        found += [(entry, name, lookback) for entry in entries
                  if entry.when is not None and in_window(entry.when.day, ctx.as_of, lookback)]
    if not found:
        lookback = crit.params.get("lookback_days")
        window = f" in the {lookback} days before {day(ctx.as_of)}" if lookback else ""
        if crit.params.get("if_missing") == "not-met":
            return result(crit, "not-met", f"No {looked} result is recorded{window}.")
        return result(crit, "unknown", f"No {looked} result is recorded{window}; the test is "
                      "required.")
    found.sort(key=lambda f: f[0].when.day if f[0].when else date.min, reverse=True)
    entry, name, _ = found[0]
    assert entry.when is not None
    answer = _answer(entry.resource)
    text = f"{cap(label(ctx.concept(name)))} on {day(entry.when.day)}"
    if answer is None:
        return result(crit, "unknown", f"{text} cannot be read as positive or negative.",
                      evidence=[entry.ref])
    return result(crit, "met" if answer == wanted else "not-met", f"{text} is {answer}.",
                  value=Value(answer), evidence=[entry.ref])


rule("coded-result", {
    "concepts": Param("concepts", required=True, kinds=("observation",)),
    # Which answer makes the rule met: "positive" (e.g. a test that excludes) or "negative".
    "answer": Param("str", required=True, choices=ANSWERS),
    "lookback_days": LOOKBACK,  # 0 = any time; default: the concept's look-back
    # With no result in the window: "unknown" (a test is required) or "not-met".
    "if_missing": Param("str", choices=("unknown", "not-met")),
})(coded_result)
