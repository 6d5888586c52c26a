"""Rules on coded or ratio results: pregnancy test and ANA titer."""

from __future__ import annotations

from typing import Any

from service.engine.context import Context
from service.engine.labs import fmt, in_window, latest_entries, ratio_denominator
from service.engine.model import CriterionMapping
from service.engine.reasons import day, result
from service.engine.record import as_list, codings
from service.engine.registry import LOOKBACK, MAX_DAYS, MAX_YEARS, Param, rule
from service.engine.results import CriterionResult, Value
from service.engine.rules.demographics import age_range


@rule("pregnancy", {
    "concept": Param("concept", required=True, kinds=("observation",)),
    "min_age_years": Param("int", minimum=0, maximum=MAX_YEARS),
    "window_days": Param("int", minimum=0, maximum=MAX_DAYS),
})
def pregnancy(ctx: Context, crit: CriterionMapping) -> CriterionResult:
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
        outcome = _hcg_result(entry.resource)
        if outcome == "negative":
            return result(crit, "met", f"Negative pregnancy test on {day(entry.when.day)}.",
                          value=Value("negative"), evidence=[entry.ref])
        if outcome == "positive":
            return result(crit, "not-met", f"Positive pregnancy test on {day(entry.when.day)}.",
                          value=Value("positive"), evidence=[entry.ref])
    if entries:
        return result(crit, "unknown", "The latest pregnancy test has no readable result.",
                      evidence=[entries[0].ref])
    return result(crit, "unknown", f"No pregnancy test within {window} days.")


# SNOMED negative / not detected / not pregnant; LOINC answers LA6577-6 Negative,
# LA6576-8 Positive; SNOMED positive / detected / pregnant.
NEGATIVE = {"260385009", "neg", "negative", "not detected", "260415000", "60001007",
            "la6577-6", "not pregnant"}
POSITIVE = {"10828004", "pos", "positive", "detected", "260373001", "77386006", "la6576-8",
            "pregnant"}


def _hcg_result(resource: dict[str, Any]) -> str | None:
    value = resource.get("valueCodeableConcept")
    words: set[str] = set()
    for coding in codings(value):
        for key in ("code", "display"):
            if isinstance(coding.get(key), str):
                words.add(coding[key].strip().lower())
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        words.add(value["text"].strip().lower())
    if isinstance(resource.get("valueString"), str):
        words.add(resource["valueString"].strip().lower())
    if isinstance(resource.get("valueBoolean"), bool):
        words.add("positive" if resource["valueBoolean"] else "negative")
    for item in as_list(resource.get("interpretation")):
        for coding in codings(item):
            code = coding.get("code")
            if code == "POS":
                words.add("positive")
            elif code == "NEG":
                words.add("negative")
    if words & POSITIVE and not words & NEGATIVE:
        return "positive"
    if words & NEGATIVE and not words & POSITIVE:
        return "negative"
    return None

@rule("titer", {
    "concept": Param("concept", required=True, kinds=("observation",)),
    "presence_concept": Param("concept", kinds=("observation",)),
    # Titers are reported up to 1:40960 or so; 1:100000 is past any laboratory's last dilution.
    "min_denominator": Param("decimal", required=True, minimum=1, maximum=100000),
    "lookback_days": LOOKBACK,
})
def titer(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    concept = ctx.concept(crit.params["concept"])
    minimum = crit.params["min_denominator"]
    lookback = crit.params.get("lookback_days", concept.lookback_days)
    entries, _ = latest_entries(ctx.record, concept, ctx.as_of)
    for entry in entries:
        assert entry.when is not None
        denominator, shown = ratio_denominator(entry.resource)
        if denominator is None:
            continue
        if not in_window(entry.when.day, ctx.as_of, lookback):
            return result(crit, "unknown", f"No ANA titer within {lookback} days (latest "
                          f"{shown} on {day(entry.when.day)} is stale).", evidence=[entry.ref])
        value = Value(f"1:{fmt(denominator)}")
        if denominator >= minimum:
            return result(crit, "met", f"ANA titer {shown} on {day(entry.when.day)} is at least "
                          f"1:{fmt(minimum)}.", value=value, evidence=[entry.ref])
        return result(crit, "not-met", f"ANA titer {shown} on {day(entry.when.day)} is below "
                      f"1:{fmt(minimum)}.", value=value, evidence=[entry.ref])
    if entries:
        return result(crit, "unknown", "The latest ANA result has no readable titer.",
                      evidence=[entries[0].ref])
    presence = crit.params.get("presence_concept")
    if presence and ctx.record.entries(presence):
        ref = ctx.record.entries(presence)[0].ref
        return result(crit, "unknown", "Only an ANA presence result is recorded; a titer is "
                      f"needed to show >= 1:{fmt(minimum)}.", evidence=[ref])
    return result(crit, "unknown", "No ANA titer on record.")
