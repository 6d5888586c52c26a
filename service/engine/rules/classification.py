"""The `sle-diagnosis` rule: a recorded 2019 EULAR/ACR classification, else the diagnosis.

docs/decisions.md: a recorded classification (`urn:trial-eligibility:score|eular-acr-2019`) decides
when present: entry criterion met and total >= 10 -> met, otherwise not-met; without one, the
coded SLE diagnosis decides. The reason always gives the points the laboratory items alone
reach (service/engine/eular_acr_labs.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from service.engine import eular_acr
from service.engine.context import Context
from service.engine.eular_acr_labs import LabScore, lab_score
from service.engine.model import CriterionMapping
from service.engine.reasons import day, result
from service.engine.record import USABLE_OBSERVATION, Entry, as_list, codings
from service.engine.registry import Param, rule
from service.engine.results import CriterionResult, Value
from service.engine.rules.diagnoses import diagnosis

ITEM_SYSTEM = "urn:trial-eligibility:eular-acr-2019-item"


def lab_reason(labs: LabScore) -> str:
    """'the laboratory items alone reach 9 points (entry ANA >= 1:80 met): ...'."""
    c = labs.classification
    entry = "met" if labs.entry.present else "not shown"
    parts = ", ".join(f"{i.label} {i.weight}" for i in c.counted)
    return (f"the laboratory and biopsy items alone reach {c.total} of the {eular_acr.THRESHOLD} "
            f"2019 EULAR/ACR points (entry criterion ANA >= 1:80 {entry})"
            + (f": {parts}" if parts else ""))


def _recorded(ctx: Context, concept: str) -> Entry | None:
    """The newest usable recorded classification up to the as-of date (a person's record)."""
    for entry in ctx.record.entries(concept):
        if entry.resource.get("resourceType") != "Observation":
            continue
        if entry.resource.get("status") not in USABLE_OBSERVATION:
            continue
        if entry.when is None or entry.when.day > ctx.as_of:
            continue
        return entry
    return None


def _components(resource: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for comp in as_list(resource.get("component")):
        if not isinstance(comp, dict):
            continue
        for coding in codings(comp.get("code")):
            if coding.get("system") == ITEM_SYSTEM and isinstance(coding.get("code"), str):
                out[coding["code"]] = comp.get("valueBoolean", comp.get("valueInteger"))
    return out


def _decide(crit: CriterionMapping, entry: Entry, labs: LabScore) -> CriterionResult:
    resource = entry.resource
    total = resource.get("valueInteger")
    parts = _components(resource)
    entry_met = parts.get(eular_acr.ENTRY)
    assert entry.when is not None
    when = day(entry.when.day)
    evidence = [entry.ref]
    if isinstance(total, bool) or not isinstance(total, int) or not isinstance(entry_met, bool):
        return result(crit, "unknown",
                      f"The 2019 EULAR/ACR classification recorded on {when} ({entry.ref}) has "
                      "no readable total or entry criterion; record it again with the "
                      f"worksheet; {lab_reason(labs)}.", evidence=evidence)
    present = [k for k, v in parts.items() if k in eular_acr.BY_KEY
               and isinstance(v, int) and not isinstance(v, bool) and v > 0]
    clinical = eular_acr.classify(entry_met, present).clinical
    value = Value(total)
    if entry_met and total >= eular_acr.THRESHOLD and clinical:
        return result(crit, "met",
                      f"Classified as SLE by the 2019 EULAR/ACR criteria on {when}: entry "
                      f"criterion met, {total} points (at least {eular_acr.THRESHOLD}); "
                      f"{lab_reason(labs)}.", value=value, evidence=evidence)
    why = ("the entry criterion (ANA >= 1:80) is not met" if not entry_met
           else f"{total} points, below {eular_acr.THRESHOLD}" if total < eular_acr.THRESHOLD
           else "no clinical item counts (at least one is required)")
    return result(crit, "not-met",
                  f"Not classified as SLE by the 2019 EULAR/ACR criteria recorded on {when}: "
                  f"{why}; {lab_reason(labs)}.", value=value, evidence=evidence)


def sle_classification(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """A recorded classification decides; without one the coded diagnosis (the `diagnosis`
    rule); the reason gives the points the laboratory items alone reach."""
    labs = lab_score(ctx.record, ctx.as_of)
    recorded = _recorded(ctx, crit.params["classification"])
    if recorded is not None:
        return _decide(crit, recorded, labs)
    coded = diagnosis(ctx, crit)
    reason = f"{coded.reason.rstrip('.')}; no 2019 EULAR/ACR classification is recorded; " \
             f"{lab_reason(labs)}."
    return replace(coded, reason=reason)


rule("sle-classification", {
    "concept": Param("concept", required=True, kinds=("condition",)),
    "exclude": Param("concepts", kinds=("condition",)),
    "classification": Param("concept", required=True, kinds=("observation",)),
})(sle_classification)
