"""Events in time: a diagnosis, procedure, medication use or vaccination within N days, or ever."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from service.engine.conditions import condition_tentative
from service.engine.context import Context
from service.engine.labs import fmt, label
from service.engine.model import CriterionMapping, normalise_token
from service.engine.reasons import any_of, cap, day, result
from service.engine.record import as_dict, as_list, codings, condition_active
from service.engine.registry import MAX_DAYS, Param, rule, together
from service.engine.results import CriterionResult
from service.engine.rules.diagnoses import CLINICAL_STATUS, display, not_proven, recorded

EVENT_KINDS = ("condition", "procedure", "medication", "immunization")
VERBS = {"Condition": "recorded", "Procedure": "performed", "Immunization": "given"}


@dataclass(frozen=True)
class Event:
    """One thing that happened: what, from when to when (None = not known), and its resource."""

    what: str
    ref: str
    start: date | None
    end: date | None
    verb: str
    # A provisional, differential or unconfirmed Condition does not prove it (docs/decisions.md).
    tentative: bool = False
    # A Condition whose grade is not recorded, where the criterion asks for a minimum grade.
    ungraded: bool = False


def grade_of(resource: dict[str, Any], answers: Mapping[str, Decimal]) -> Decimal | None:
    """A Condition's grade: the highest of its `severity` and `stage.summary` codings that the
    grade concept's `answers` give a number (CTCAE grade, BILAG A-E...); None when none."""
    concepts = [resource.get("severity")] + [
        as_dict(stage).get("summary") for stage in as_list(resource.get("stage"))]
    grades = [grade for concept in concepts for c in codings(concept)
              if (grade := answers.get(normalise_token(c.get("system"), c.get("code")) or ""))
              is not None]
    return max(grades) if grades else None


def _events(ctx: Context, names: tuple[str, ...], active_only: bool = False,
            grading: tuple[Mapping[str, Decimal], Decimal] | None = None) -> list[Event]:
    found = []
    for entry in recorded(ctx, names):
        rtype = str(entry.resource.get("resourceType"))
        if active_only and rtype == "Condition" and not condition_active(entry.resource):
            continue  # resolved, inactive or in remission: not counted when only active counts
        ungraded = False
        if grading is not None and rtype == "Condition":
            grade = grade_of(entry.resource, grading[0])
            if grade is not None and grade < grading[1]:
                continue  # graded below the minimum: not this event
            ungraded = grade is None
        start = entry.when.day if entry.when else None
        # A partial date ("2026-10") stands for its whole month or year.
        end = entry.when.latest if entry.when else None
        concept = next(n for n in entry.concepts if n in names)
        what = display(entry.resource, cap(label(ctx.concept(concept))))
        tentative = rtype == "Condition" and condition_tentative(entry.resource)
        found.append(Event(what, entry.ref, start, end, VERBS[rtype], tentative, ungraded))
    for use in ctx.uses:
        shared = [n for n in use.concepts if n in names]
        if shared:
            end = use.end if use.end is not None else None
            found.append(Event(cap(label(ctx.concept(shared[0]))), use.ref, use.start, end,
                               "taken"))
    return found


def _placed(event: Event, since: date | None) -> bool | None:
    """Whether the event falls inside the window from `since` (None = ever); None = unsure."""
    if event.tentative or event.ungraded:
        return None if since is None or event.start is None or event.start >= since else False
    if since is None:
        return True
    if event.start is None:
        return None
    if event.start >= since or (event.end is not None and event.end >= since):
        return True
    if event.end is None and event.verb == "taken":
        return None  # a use of unknown duration that started before may reach into the window
    return False


def event(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when one of the concepts happened in the window (Condition onset or recorded date,
    Procedure performed, medication use period, Immunization given)."""
    names = crit.params["concepts"]
    within = crit.params.get("within_days")
    since = ctx.as_of - timedelta(days=within) if within else None
    window = f" in the {within} days before {day(ctx.as_of)}" if within else ""
    grading = ((ctx.concept(crit.params["grade"]).answers, crit.params["min_grade"])
               if "grade" in crit.params else None)
    events = _events(ctx, names, crit.params.get("clinical_status") == "active", grading)
    inside = [e for e in events if _placed(e, since) is True]
    unsure = [e for e in events if _placed(e, since) is None]
    if inside:
        inside.sort(key=lambda e: e.end or e.start or date.min, reverse=True)
        first = inside[0]
        when = f" on {day(first.start)}" if first.start else " (undated)"
        return result(crit, "met", f"{first.what} {first.verb}{when} ({first.ref}){window}.",
                      evidence=[e.ref for e in inside])
    if unsure:
        first = unsure[0]
        why = ("it is recorded as tentative (provisional, differential or unconfirmed)"
               if first.tentative else f"its grade is not recorded (grade {fmt(grading[1])} "
               "or higher counts)" if first.ungraded and grading is not None
               else f"its date does not show whether it falls{window}")
        return result(crit, "unknown", f"{first.what} is recorded ({first.ref}), but {why}.",
                      evidence=[e.ref for e in unsure])
    # A diagnosis written only as text is not missing (docs/decisions.md): unknown, not not-met.
    text_only = not_proven(ctx, crit, [], names)
    if text_only is not None:
        return text_only
    looked = any_of([label(ctx.concept(n)) for n in names])
    older = sorted((e for e in events if e.start), key=lambda e: e.start or date.min)
    tail = f" (the latest, {older[-1].ref}, is older)" if older else ""
    return result(crit, "not-met", f"No {looked} is recorded{window}{tail}.",
                  evidence=[e.ref for e in older[-1:]])


rule("event", {
    "concepts": Param("concepts", required=True, kinds=EVENT_KINDS),
    # Within this many days before the as-of date (a use overlapping them counts); absent: ever.
    "within_days": Param("int", minimum=1, maximum=MAX_DAYS),
    # Conditions: "ever" (default) counts a resolved or inactive one, "active" only an active one.
    "clinical_status": CLINICAL_STATUS,
    # A graded diagnosis (CTCAE grade >= 2, BILAG A): a Condition counts only at or above
    # `min_grade`, read from its severity or stage by the `grade` concept's `answers`; one
    # without a grade is unknown.
    "grade": Param("concept", kinds=("observation",)),
    "min_grade": Param("decimal", minimum=0, maximum=100),
}, checks=(together("grade", "min_grade"),))(event)
