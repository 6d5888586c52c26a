"""Decide one criterion: who it applies to, its rule, and what an exclusion's result means."""

from __future__ import annotations

import re
from dataclasses import replace

from service.engine.ages import age_range
from service.engine.context import Context
from service.engine.model import Applicability, CriterionMapping
from service.engine.reasons import result
from service.engine.registry import RULES
from service.engine.results import CriterionResult

FLIPPED = {"met": "not-met", "not-met": "met", "unknown": "unknown"}
EXCLUSION_PREFIX = {"met": "Not excluded: ", "not-met": "Excluded: ", "unknown": ""}


def decide(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """The criterion's result for this patient, phrased for a coordinator."""
    skipped = _not_applicable(ctx, crit.applies) if crit.applies is not None else None
    if skipped is not None:
        out = result(crit, "met", f"Not applicable: {skipped}.",
                     evidence=[f"Patient/{ctx.record.patient_id}"])
        return replace(out, type=crit.type)
    spec = RULES[crit.rule]
    found = spec.evaluate(ctx, crit)
    wording = crit.wording.get(found.result)
    if wording:
        # The mapping says what the result means for this criterion ("CD19 is expressed").
        found = replace(found, reason=f"{found.reason.rstrip('.')}: {wording}.")
    if crit.type == "exclusion" and not spec.verdict:
        # The rule describes what excludes: its `met` means the exclusion applies.
        outcome = FLIPPED[found.result]
        reason = found.reason
        prefix = EXCLUSION_PREFIX[outcome]
        if prefix and _ordinary_word(re.split(r"\s", reason)[0]):
            reason = reason[:1].lower() + reason[1:]
        found = replace(found, result=outcome, reason=prefix + reason)  # type: ignore[arg-type]
    return replace(found, type=crit.type)


def _ordinary_word(word: str) -> bool:
    """A word written with a capital only because it starts a sentence ("Haemoglobin"), not a
    name that keeps its capitals or signs mid-sentence ("SpO2", "HbA1c", "CD19", "X-ray", "A")."""
    rest = word[1:]
    return rest.isalpha() and rest.islower()


def _not_applicable(ctx: Context, applies: Applicability) -> str | None:
    """Why the criterion does not apply to this patient; None when it does or may apply."""
    gender = ctx.record.gender
    if applies.sex is not None and gender in ("female", "male") and gender != applies.sex:
        return f"the patient is {gender} (applies to {applies.sex}s only)"
    birth = ctx.record.birth_date
    if birth is None or birth.day > ctx.as_of:
        return None
    youngest, oldest = age_range(birth.day, birth.precision, ctx.as_of)
    if applies.min_age is not None and oldest < applies.min_age:
        return f"the patient is {oldest} years old (applies from {applies.min_age})"
    if applies.max_age is not None and youngest > applies.max_age:
        return f"the patient is {youngest} years old (applies up to {applies.max_age})"
    return None
