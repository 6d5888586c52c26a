"""Rules a person attests: manual confirmations and informed consent."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from service.engine.context import Context
from service.engine.labs import in_window, latest_entries
from service.engine.model import CriterionMapping
from service.engine.reasons import day, result
from service.engine.record import USABLE_OBSERVATION, Entry, as_list, codings, parse_date, ref_key
from service.engine.registry import LOOKBACK, Param, needs, rule
from service.engine.results import CriterionResult

CONSENT_POLICY_PREFIX = "urn:trial-eligibility:study:"
MANUAL_SYSTEM = "urn:trial-eligibility:criterion"
STUDY_SYSTEM = "urn:trial-eligibility:study"
# Where a coordinator records it: the patient page has a form per manual criterion.
WHERE = "Record it with the confirmation form on the patient page."
WHERE_CONSENT = "Record it with the confirmation form on the patient page once it is signed."


def _focus_studies(ctx: Context, resource: dict[str, Any]) -> set[str] | None:
    """Study keys an Observation's `focus` names; None when it names no study at all.

    A ResearchStudy is recognised by our identifier on the reference, by a reference the
    caller said means a study, or by a ResearchStudy of the record carrying our identifier.
    """
    named: set[str] = set()
    studies = False
    for focus in as_list(resource.get("focus")):
        if not isinstance(focus, dict):
            continue
        reference = focus.get("reference")
        identifier = focus.get("identifier")
        if isinstance(identifier, dict) and identifier.get("system") == STUDY_SYSTEM:
            studies = True
            if isinstance(identifier.get("value"), str):
                named.add(identifier["value"])
        if not isinstance(reference, str) or "ResearchStudy/" not in reference:
            continue
        studies = True
        tail = "ResearchStudy/" + reference.rstrip("/").rsplit("ResearchStudy/", 1)[1]
        for key, ref in ctx.research_studies.items():
            if ref == tail:
                named.add(key)
        target = ctx.record.resolve(tail)
        for item in as_list(target.get("identifier") if target else None):
            if isinstance(item, dict) and item.get("system") == STUDY_SYSTEM:
                named.add(str(item.get("value")))
    return named if studies else None


def _manual_observations(ctx: Context, criterion_id: str, scope: str) -> list[Entry]:
    """Usable confirmations of a criterion that count for this study (docs/write-back.md scopes)."""
    out = []
    for entry in ctx.record.entries("manual-confirmation"):
        if entry.resource.get("status") not in USABLE_OBSERVATION:
            continue
        if not any(c.get("system") == MANUAL_SYSTEM and c.get("code") == criterion_id
                   for c in codings(entry.resource.get("code"))):
            continue
        if entry.when is None or entry.when.day > ctx.as_of:
            continue
        studies = _focus_studies(ctx, entry.resource)
        # Naming a study limits a confirmation to it; a per-study criterion needs one that
        # names this study, a per-patient one also takes a confirmation naming none.
        if studies is None and scope == "study":
            continue
        if studies is not None and ctx.study not in studies:
            continue
        out.append(entry)
    return out


def manual(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when a person confirmed it in the record (within the look-back, in its scope), or a
    coded interpretation decides.
    """
    lookback = crit.params.get("lookback_days", 90)
    interpretation = crit.params.get("interpretation")
    if interpretation:
        coded = _coded_interpretation(ctx, crit, interpretation, lookback)
        if coded is not None:
            return coded
    scope = crit.params["scope"]
    confirmations = _manual_observations(ctx, crit.id, scope)
    for entry in confirmations:
        assert entry.when is not None
        if not in_window(entry.when.day, ctx.as_of, lookback):
            return result(crit, "unknown",
                          f"The confirmation of {entry.when.day.isoformat()} is older than "
                          f"{lookback} days; a person must confirm it again. {WHERE}",
                          evidence=[entry.ref])
        answer = entry.resource.get("valueBoolean")
        if crit.type == "exclusion" and isinstance(answer, bool):
            return _excluding_answer(crit, entry, answer)
        if answer is True:
            return result(crit, "met", f"Confirmed by a person on {day(entry.when.day)}.",
                          evidence=[entry.ref])
        if answer is False:
            return result(crit, "not-met",
                          f"A person recorded on {day(entry.when.day)} that it is not met.",
                          evidence=[entry.ref])
    # What is needed is the mapping's criterion text; how an integrator records it is in
    # docs/write-back.md ("Recording what a person confirms"), not a coordinator's concern.
    per_study = " for this study" if scope == "study" else ""
    return result(crit, "unknown",
                  f"Needs a person to confirm{per_study}: {_needed(crit)}. {WHERE}")


rule("manual", {
    # docs/write-back.md "Recording what a person confirms": confirmed once per patient, or once
    # per study.
    "scope": Param("str", required=True, choices=("patient", "study")),
    "lookback_days": LOOKBACK,
    "interpretation": Param("concept", kinds=("observation",)),
    "normal": Param("concept", kinds=("observation",)),
    "abnormal": Param("concept", kinds=("observation",)),
}, checks=(needs("normal", "interpretation"), needs("abnormal", "interpretation")),
    verdict=True)(manual)


def _excluding_answer(crit: CriterionMapping, entry: Entry, present: bool) -> CriterionResult:
    """A manual exclusion's confirmation says whether the condition is present (valueBoolean
    true: present, so excluded); the criterion is met when it is absent."""
    assert entry.when is not None
    what = _needed(crit)
    if present:
        return result(crit, "not-met", f"Excluded: a person recorded on {day(entry.when.day)} "
                      f"that it is present: {what}.", evidence=[entry.ref])
    return result(crit, "met", f"Not excluded: a person recorded on {day(entry.when.day)} "
                  f"that it is absent: {what}.", evidence=[entry.ref])


def _needed(crit: CriterionMapping) -> str:
    return crit.text.strip().rstrip(".") or crit.id


def _coded_interpretation(ctx: Context, crit: CriterionMapping, concept: str, lookback: int
                          ) -> CriterionResult | None:
    entries, _ = latest_entries(ctx.record, ctx.concept(concept), ctx.as_of)
    normal = ctx.concept(crit.params["normal"]).codes if "normal" in crit.params else frozenset()
    abnormal = (ctx.concept(crit.params["abnormal"]).codes if "abnormal" in crit.params
                else frozenset())
    for entry in entries:
        assert entry.when is not None
        if not in_window(entry.when.day, ctx.as_of, lookback):
            return None
        tokens = {f"{c.get('system')}|{c.get('code')}"
                  for c in codings(entry.resource.get("valueCodeableConcept"))}
        if tokens & abnormal:
            return result(crit, "not-met",
                          f"The ECG of {day(entry.when.day)} is coded abnormal.",
                          evidence=[entry.ref])
        if tokens & normal:
            return result(crit, "met", f"The ECG of {day(entry.when.day)} is coded normal.",
                          evidence=[entry.ref])
    return None


def _consent_studies(ctx: Context, resource: dict[str, Any]) -> set[str]:
    """Study keys a Consent names: our policy uri, or the key or registry number anywhere."""
    text = json.dumps(resource, ensure_ascii=False)
    named = set()
    for key, study in ctx.mappings.studies.items():
        if key in text or (study.registry_id and study.registry_id in text):
            named.add(key)
    return named


def _research_scope(resource: dict[str, Any]) -> bool:
    codes = {c.get("code") for c in codings(resource.get("scope"))}
    for category in as_list(resource.get("category")):
        codes |= {c.get("code") for c in codings(category)}
    return "research" in codes


def consent(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when the newest signed, refused or withdrawn Consent for this study is active."""
    found = []
    general = []
    for resource in ctx.record.by_type.get("Consent", []):
        # A draft or proposal is not a decision; only signed, refused or withdrawn ones count.
        if resource.get("status") not in ("active", "rejected", "inactive"):
            continue
        when = parse_date(resource.get("dateTime"))
        if when is not None and when.day > ctx.as_of:
            continue
        named = _consent_studies(ctx, resource)
        item = (when.day if when else date.min, resource, when)
        if ctx.study in named:
            found.append(item)
        elif not named and _research_scope(resource):
            general.append(item)
    if not found and general:
        # A research consent that names no study at all: taken as covering this one, and
        # the reason asks the coordinator to check it.
        found = general
    if not found:
        return result(crit, "unknown",
                      f"No signed informed consent for this study is recorded: {_needed(crit)}. "
                      f"{WHERE_CONSENT}")
    # The newest decision counts: a later withdrawal overrides an earlier signature.
    found.sort(key=lambda item: item[0], reverse=True)
    _, resource, when = found[0]
    status = resource.get("status")
    generic = found is general
    if status == "active":
        return result(crit, "met",
                      ("A research consent naming no particular study is active"
                       if generic else "Informed consent for this study is recorded as active")
                      + (f" (signed {day(when.day)})" if when else "")
                      + ("; check that it covers this study." if generic else "."),
                      evidence=[ref_key(resource)])
    return result(crit, "unknown",
                  f"The latest consent for this study is {status or 'without a status'}; an "
                  f"active, signed consent is needed. {WHERE_CONSENT}",
                  evidence=[ref_key(resource)])


rule("consent", verdict=True)(consent)
