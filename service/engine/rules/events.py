"""Events in time: a diagnosis, procedure, medication use or vaccination within N days, or ever."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from service.engine.conditions import condition_tentative
from service.engine.context import Context
from service.engine.labs import label
from service.engine.model import CriterionMapping
from service.engine.reasons import cap, day, result
from service.engine.record import condition_active
from service.engine.registry import MAX_DAYS, Param, rule
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


def _events(ctx: Context, names: tuple[str, ...], active_only: bool = False) -> list[Event]:
    found = []
    for entry in recorded(ctx, names):
        rtype = str(entry.resource.get("resourceType"))
        if active_only and rtype == "Condition" and not condition_active(entry.resource):
            continue  # resolved, inactive or in remission: not counted when only active counts
        start = entry.when.day if entry.when else None
        # A partial date ("2026-10") stands for its whole month or year.
        end = entry.when.latest if entry.when else None
        concept = next(n for n in entry.concepts if n in names)
        what = display(entry.resource, cap(label(ctx.concept(concept))))
        tentative = rtype == "Condition" and condition_tentative(entry.resource)
        found.append(Event(what, entry.ref, start, end, VERBS[rtype], tentative))
    for use in ctx.uses:
        shared = [n for n in use.concepts if n in names]
        if shared:
            end = use.end if use.end is not None else None
            found.append(Event(cap(label(ctx.concept(shared[0]))), use.ref, use.start, end,
                               "taken"))
    return found


def _placed(event: Event, since: date | None) -> bool | None:
    """Whether the event falls inside the window from `since` (None = ever); None = unsure."""
    if event.tentative:
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


@rule("event", {
    "concepts": Param("concepts", required=True, kinds=EVENT_KINDS),
    # Within this many days before the as-of date (a use overlapping them counts); absent: ever.
    "within_days": Param("int", minimum=1, maximum=MAX_DAYS),
    # Conditions: "ever" (default) counts a resolved or inactive one, "active" only an active one.
    "clinical_status": CLINICAL_STATUS,
})
def event(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when one of the concepts happened in the window (Condition onset or recorded date,
    Procedure performed, medication use period, Immunization given)."""
    names = crit.params["concepts"]
    within = crit.params.get("within_days")
    since = ctx.as_of - timedelta(days=within) if within else None
    window = f" in the {within} days before {day(ctx.as_of)}" if within else ""
    events = _events(ctx, names, crit.params.get("clinical_status") == "active")
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
               if first.tentative else f"its date does not show whether it falls{window}")
        return result(crit, "unknown", f"{first.what} is recorded ({first.ref}), but {why}.",
                      evidence=[e.ref for e in unsure])
    # A diagnosis written only as text is not missing (docs/decisions.md): unknown, not not-met.
    text_only = not_proven(ctx, crit, [], names)
    if text_only is not None:
        return text_only
    looked = " or ".join(label(ctx.concept(n)) for n in names)
    older = sorted((e for e in events if e.start), key=lambda e: e.start or date.min)
    tail = f" (the latest, {older[-1].ref}, is older)" if older else ""
    return result(crit, "not-met", f"No {looked} is recorded{window}{tail}.",
                  evidence=[e.ref for e in older[-1:]])
