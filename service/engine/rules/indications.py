"""A medication given for a condition: its indication (reasonCode / reasonReference)."""

from __future__ import annotations

from datetime import timedelta

from service.engine.context import Context
from service.engine.labs import label
from service.engine.medications import MedicationUse
from service.engine.model import CriterionMapping
from service.engine.reasons import any_of, cap, day, result
from service.engine.registry import MAX_DAYS, Param, rule
from service.engine.results import CriterionResult


def medication_for(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when a medication use whose reasonCode or reasonReference names one of the
    indications was taken in the window. A use without a recorded reason says nothing about
    its indication: it is not counted, and the reason says what was looked for."""
    p = crit.params
    wanted = set(p["indications"])
    only = set(p.get("concepts", ()))
    since = ctx.as_of - timedelta(days=p["within_days"]) if "within_days" in p else None
    window = f" in the {p['within_days']} days before {day(ctx.as_of)}" if since else ""
    for_what = any_of([label(ctx.concept(n)) for n in p["indications"]])
    inside: list[MedicationUse] = []
    unsure: list[MedicationUse] = []
    for use in ctx.uses:
        if not set(use.reasons) & wanted or (only and not set(use.concepts) & only):
            continue
        if use.start is None:
            unsure.append(use)  # no date: cannot be placed in the window
        elif since is None or use.start >= since or (use.end is not None and use.end >= since):
            inside.append(use)
        elif use.end is None:
            unsure.append(use)  # started before, for an unknown time: may reach the window
    if inside:
        first = inside[0]
        what = cap(label(ctx.concept(first.concepts[0]))) if first.concepts else "A medication"
        return result(crit, "met", f"{what} was given for "
                      f"{for_what} ({first.ref}){window}.", evidence=[u.ref for u in inside])
    if unsure:
        return result(crit, "unknown", f"A medication for {for_what} is recorded "
                      f"({unsure[0].ref}), but its dates do not show whether it was taken"
                      f"{window}.", evidence=[u.ref for u in unsure])
    return result(crit, "not-met", f"No medication recorded as given for {for_what}{window}.")


rule("medication-for", {
    # The conditions the medication was given for (its indication).
    "indications": Param("concepts", required=True, kinds=("condition",)),
    # Only these medications; absent: any medication.
    "concepts": Param("concepts", kinds=("medication",)),
    # Taken in this many days before the as-of date (a use overlapping them counts); absent:
    # ever.
    "within_days": Param("int", minimum=1, maximum=MAX_DAYS),
})(medication_for)
