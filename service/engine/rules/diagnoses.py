"""Rules on recorded diagnoses and procedures: diagnosis, absence, kidney biopsy."""

from __future__ import annotations

from datetime import date
from typing import Any

from service.engine.conditions import (
    TENTATIVE_VERIFICATION,
    condition_tentative,
    has_coding,
    uncoded_mentions,
)
from service.engine.context import Context
from service.engine.labs import label
from service.engine.model import CriterionMapping
from service.engine.reasons import any_of, cap, day, result
from service.engine.record import (
    Entry,
    as_list,
    codes_of,
    codings,
    condition_active,
    ref_key,
)
from service.engine.registry import MAX_DAYS, Param, rule
from service.engine.results import CriterionResult, Value


def conditions(ctx: Context, concept: str) -> list[Entry]:
    return [
        e for e in ctx.record.entries(concept)
        if e.resource.get("resourceType") == "Condition"
        and (e.when is None or e.when.day <= ctx.as_of)
    ]


# Which Conditions count (clinicalStatus): "ever" counts a resolved, inactive or remitted one
# too (a diagnosis once made); "active" counts only active, recurrence or relapse (absent
# clinicalStatus counts as active).
CLINICAL_STATUS = Param("str", choices=("ever", "active"))


def diagnosis(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when the Condition is recorded (and is not only one of the excluded ones)."""
    name = crit.params["concept"]
    exclude = crit.params.get("exclude", ())
    excluded_refs = {e.ref for ex in exclude for e in conditions(ctx, ex)}
    found = [e for e in conditions(ctx, name) if e.ref not in excluded_refs]
    confirmed = [e for e in found if not condition_tentative(e.resource)]
    active = [e for e in confirmed if condition_active(e.resource)]
    if active:
        entry = active[0]
        return result(crit, "met", f"{display(entry.resource)} is recorded ({entry.ref}).",
                      evidence=[e.ref for e in active])
    if confirmed and crit.params.get("clinical_status") == "active":
        return result(crit, "not-met",
                      f"{display(confirmed[0].resource)} is recorded but not active "
                      f"({confirmed[0].ref}); only an active diagnosis counts here.",
                      evidence=[e.ref for e in confirmed])
    if confirmed:
        return result(crit, "met",
                      f"{display(confirmed[0].resource)} is recorded, though not marked active "
                      f"({confirmed[0].ref}).", evidence=[e.ref for e in confirmed])
    wanted = label(ctx.concept(name)) if ctx.concept(name).display else (
        name.upper() if len(name) <= 4 else name)
    unproven = not_proven(ctx, crit, found, (name,), exclude)
    if unproven is not None:
        return unproven
    if excluded_refs:
        others = any_of([label(ctx.concept(ex)) for ex in exclude])
        return result(crit, "not-met",
                      f"Only {others} is recorded, which does not count as {wanted}.",
                      evidence=sorted(excluded_refs))
    return result(crit, "not-met", f"No {wanted} diagnosis is recorded.")


rule("diagnosis", {
    "concept": Param("concept", required=True, kinds=("condition",)),
    "exclude": Param("concepts", kinds=("condition",)),
    # Default "ever": a resolved diagnosis still meets an inclusion such as "SLE".
    "clinical_status": CLINICAL_STATUS,
})(diagnosis)


def not_proven(ctx: Context, crit: CriterionMapping, found: list[Entry],
               names: tuple[str, ...], unless: tuple[str, ...] = ()) -> CriterionResult | None:
    """`unknown` when the diagnosis is only provisional/differential/unconfirmed, or only
    written as text naming it (docs/decisions.md "Records as hospitals send them"); else None."""
    tentative = [e for e in found if condition_tentative(e.resource)]
    if tentative:
        entry = tentative[0]
        status = sorted(codes_of(entry.resource.get("verificationStatus"))
                        & TENTATIVE_VERIFICATION)[0]
        return result(crit, "unknown",
                      f"{display(entry.resource)} is recorded as {status} ({entry.ref}), which "
                      "does not prove the diagnosis: a clinician must confirm it.",
                      evidence=[e.ref for e in tentative])
    words = [n for name in names for n in _names(ctx, name)]
    mentions = uncoded_mentions(ctx.record, words, [n for ex in unless for n in _names(ctx, ex)])
    if mentions:
        first = mentions[0]
        how = "recorded as text only" if not has_coding(first) else (
            "recorded under a code the mappings do not know")
        return result(crit, "unknown",
                      f"{display(first)} is {how} ({ref_key(first)}): it is not missing, but a "
                      "coded diagnosis or a person's review is needed.",
                      evidence=[ref_key(r) for r in mentions])
    return None


def written_only(ctx: Context, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Conditions of the concepts recorded only as text (or under an unmapped code) whose
    words name them: not missing, so a rule that would say `not-met` without them says
    `unknown` (e.g. Gilbert syndrome written out raises a bilirubin limit)."""
    return uncoded_mentions(ctx.record, [n for name in names for n in _names(ctx, name)])


def _names(ctx: Context, name: str) -> tuple[str, ...]:
    concept = ctx.concept(name)
    return concept.names if concept.kind == "condition" else ()


def display(resource: dict[str, Any], fallback: str | None = None) -> str:
    """How a resource names itself (code text or display); else the fallback or its code."""
    # An Immunization names itself by vaccineCode, even beside a stray `code` that is no object.
    named = (_words(resource.get("code"), fallback is None)
             or _words(resource.get("vaccineCode"), fallback is None))
    return named or fallback or "A matching diagnosis"


def _words(code: Any, with_code: bool) -> str | None:
    """A CodeableConcept's text, else its first display (or, `with_code`, "Code <code>" when a
    coding without a display comes first); None when it names nothing."""
    if not isinstance(code, dict):
        return None
    text = code.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()[:80]
    for coding in codings(code):
        shown = coding.get("display")
        if isinstance(shown, str):
            return shown.strip()[:80]
        if isinstance(coding.get("code"), str) and with_code:
            return f"Code {coding['code']}"
    return None


def absence(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when none of the concepts is recorded: an active Condition, a Procedure done,
    a medication taken or an Immunization given, at any time up to the as-of date."""
    names = crit.params["concepts"]
    found = [e for name in names for e in conditions(ctx, name)
             if condition_active(e.resource)]
    confirmed = [e for e in found if not condition_tentative(e.resource)]
    if confirmed:
        return result(crit, "not-met", f"{display(confirmed[0].resource)} is recorded.",
                      evidence=[e.ref for e in confirmed])
    unproven = not_proven(ctx, crit, found, names)
    if unproven is not None:
        return unproven
    other = [e for e in recorded(ctx, names) if e.resource.get("resourceType") != "Condition"]
    if other:
        return result(crit, "not-met", f"{display(other[0].resource)} is recorded.",
                      evidence=[e.ref for e in other])
    uses = [u for u in ctx.uses if set(u.concepts) & set(names)]
    if uses:
        return result(crit, "not-met",
                      f"{cap(label(ctx.concept(uses[0].concepts[0])))} is recorded "
                      f"({uses[0].ref}).", evidence=[u.ref for u in uses])
    return result(crit, "met", f"No {' or '.join(label(ctx.concept(n)) for n in names)} is "
                  "recorded.")


rule("absence", {
    "concepts": Param("concepts", required=True,
                      kinds=("condition", "procedure", "medication", "immunization")),
}, negated=True)(absence)


# Procedure and Immunization statuses that say it was (being) done.
DONE = {"Procedure": {"completed", "in-progress", "stopped", "unknown"},
        "Immunization": {"completed"}}


def recorded(ctx: Context, names: tuple[str, ...]) -> list[Entry]:
    """Entries of the concepts that say it happened, dated up to the as-of date or undated."""
    out = []
    for name in names:
        for entry in ctx.record.entries(name):
            rtype = entry.resource.get("resourceType")
            if rtype in DONE and entry.resource.get("status") not in DONE[str(rtype)]:
                continue
            if rtype not in ("Condition", "Procedure", "Immunization"):
                continue
            if entry.when is not None and entry.when.day > ctx.as_of:
                continue
            out.append(entry)
    return list({e.ref: e for e in out}.values())

def ln_biopsy(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Class III/IV nephritis and a kidney biopsy within the window.

    Stays bespoke: a pathology DiagnosticReport whose conclusion codes the class is at once
    the class and the biopsy, which two independent parts of an all-of cannot express.
    """
    p = crit.params
    recorded_classes = _class_entries(ctx, p["classes"])
    classes = [e for e in recorded_classes if not condition_tentative(e.resource)]
    others = [e for e in _class_entries(ctx, p.get("other_classes", ()))
              if not condition_tentative(e.resource)]
    superseded = _superseded(classes, others)
    if superseded is not None:
        return superseded_result(crit, superseded, classes)
    biopsies = [
        e for name in p["biopsy"] for e in ctx.record.entries(name)
        if e.resource.get("resourceType") in ("Procedure", "DiagnosticReport")
    ] + [e for e in classes if e.resource.get("resourceType") == "DiagnosticReport"]
    dated = sorted(
        {e.ref: e for e in biopsies if e.when is not None and e.when.day <= ctx.as_of}.values(),
        key=lambda e: e.when.day, reverse=True)  # type: ignore[union-attr]
    if not classes:
        return _no_class(ctx, crit, recorded_classes, dated)
    class_refs = [e.ref for e in classes]
    if not dated:
        # Undated biopsies are cited (a date would decide); ones after the as-of date are not.
        return result(crit, "unknown",
                      "Class III/IV lupus nephritis is recorded, but no dated kidney biopsy.",
                      evidence=class_refs + [e.ref for e in biopsies if e.when is None])
    latest = dated[0]
    assert latest.when is not None
    age = (ctx.as_of - latest.when.day).days
    limit = p["max_age_days"]
    if age <= limit:
        return result(crit, "met",
                      f"Class III/IV lupus nephritis with a kidney biopsy on "
                      f"{day(latest.when.day)}, {age} days before screening (limit {limit}).",
                      value=Value(age, "d"), evidence=class_refs + [latest.ref])
    return result(crit, "not-met",
                  f"The latest kidney biopsy ({day(latest.when.day)}) is {age} days before "
                  f"screening, more than {limit} days.", value=Value(age, "d"),
                  evidence=class_refs + [latest.ref])


rule("ln-biopsy", {
    "classes": Param("concepts", required=True, kinds=("condition",)),
    "biopsy": Param("concepts", required=True, kinds=("procedure",)),
    "max_age_days": Param("int", required=True, minimum=0, maximum=MAX_DAYS),
    # Lupus nephritis without a class (e.g. ICD-10-CM M32.14): with a biopsy in the window the
    # class is "not recorded" (unknown), not absent (docs/decisions.md "Records as hospitals...").
    "nephritis": Param("concept", kinds=("condition",)),
    # Classes that are known and are not the ones required (I, II, V alone, VI): when the most
    # recent recorded class is only one of these, the criterion is not met (docs/decisions.md).
    "other_classes": Param("concepts", kinds=("condition",)),
})(ln_biopsy)


def _class_entries(ctx: Context, names: tuple[str, ...]) -> list[Entry]:
    """Active class Conditions and pathology conclusions of the concepts, up to the as-of date."""
    return [
        e for name in names for e in ctx.record.entries(name)
        if (e.when is None or e.when.day <= ctx.as_of)
        and (e.resource.get("resourceType") != "Condition" or condition_active(e.resource))
    ]


def _superseded(classes: list[Entry], others: list[Entry]) -> list[Entry] | None:
    """The other-class entries of the most recent recorded class when no required class is
    recorded on that date (e.g. class V alone, or class II after an older class IV); else
    None. Undated entries count as the oldest: a date decides which class is the latest."""
    if not others:
        return None
    def when(e: Entry) -> date:
        return e.when.day if e.when is not None else date.min
    latest = max(when(e) for e in classes + others)
    if any(when(e) == latest for e in classes):
        return None
    return [e for e in others if when(e) == latest]


def superseded_result(crit: CriterionMapping, latest: list[Entry], classes: list[Entry]
                      ) -> CriterionResult:
    """`not-met`: the most recent class is known and is not one the criterion requires."""
    shown = ", ".join(dict.fromkeys(_class_name(e.resource) for e in latest))
    older = " (an older required class is superseded by it)" if classes else ""
    return result(crit, "not-met",
                  f"The most recent lupus nephritis class recorded is {shown} "
                  f"({latest[0].ref}), not class III or IV{older}.",
                  evidence=[e.ref for e in latest] + [e.ref for e in classes])


def _class_name(resource: dict[str, Any]) -> str:
    """How a class entry names its class: a pathology report by its conclusions (its own code
    names the report, e.g. "Code 60567-5", not the class it concludes)."""
    if resource.get("resourceType") != "DiagnosticReport":
        return display(resource)
    named = [n for c in as_list(resource.get("conclusionCode")) if (n := _words(c, True))]
    return ", ".join(dict.fromkeys(named)) or display(resource)


def _no_class(ctx: Context, crit: CriterionMapping, tentative: list[Entry],
              dated: list[Entry]) -> CriterionResult:
    """No confirmed class III/IV: tentative only, class not recorded, or absent."""
    p = crit.params
    recent = [e for e in dated if e.when is not None
              and (ctx.as_of - e.when.day).days <= p["max_age_days"]]
    if tentative:
        unproven = not_proven(ctx, crit, tentative, ())
        assert unproven is not None
        return unproven
    nephritis = [e for e in conditions(ctx, p["nephritis"])
                 if condition_active(e.resource) and not condition_tentative(e.resource)
                 ] if "nephritis" in p else []
    if nephritis and recent and recent[0].when is not None:
        return result(crit, "unknown",
                      f"Lupus nephritis is recorded ({nephritis[0].ref}) with a kidney biopsy on "
                      f"{day(recent[0].when.day)}, but the class is not recorded (class III or "
                      "IV is required).", evidence=[nephritis[0].ref, recent[0].ref])
    # Written only as text ("Lupus nephritis class IV"): not missing, so not `not-met`.
    text_only = not_proven(ctx, crit, [], tuple(p["classes"]) + (
        (p["nephritis"],) if "nephritis" in p else ()))
    if text_only is not None:
        return text_only
    return result(crit, "not-met",
                  "No active class III or IV lupus nephritis is recorded (Condition or "
                  "pathology conclusion).")
