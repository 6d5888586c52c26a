"""The patient's enrolment in other studies, read from their ResearchSubjects."""

from __future__ import annotations

from typing import Any

from service.engine.context import Context
from service.engine.model import CriterionMapping
from service.engine.reasons import result
from service.engine.record import as_list, ref_key, reference_of
from service.engine.registry import Param, rule
from service.engine.results import CriterionResult

RESEARCH_SUBJECT_SYSTEM = "urn:trial-eligibility:research-subject"
# R4 research-subject-status codes (docs/write-back.md lists the workflow ones a person sets).
SUBJECT_STATUSES = (
    "candidate", "eligible", "follow-up", "ineligible", "not-registered", "off-study",
    "on-study", "on-study-intervention", "on-study-observation", "pending-on-study",
    "potential-candidate", "screening", "withdrawn",
)


def _this_study(ctx: Context, subject: dict[str, Any]) -> bool:
    """Whether a ResearchSubject is this service's one for the study being evaluated."""
    mine = f"{ctx.study}/{ctx.record.patient_id}"
    for identifier in as_list(subject.get("identifier")):
        if (isinstance(identifier, dict) and identifier.get("system") == RESEARCH_SUBJECT_SYSTEM
                and identifier.get("value") == mine):
            return True
    study = reference_of(subject.get("study"))
    known = ctx.research_studies.get(ctx.study)
    return bool(known and study and study.endswith(known))


def enrolled_elsewhere(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """Met when a ResearchSubject of this patient in another study has one of the statuses."""
    wanted = crit.params["statuses"]
    found = [s for s in ctx.record.by_type.get("ResearchSubject", [])
             if s.get("status") in wanted and not _this_study(ctx, s)]
    if found:
        first = found[0]
        study = reference_of(first.get("study")) or "another study"
        return result(crit, "met", f"The patient is {first.get('status')} in {study} "
                      f"({ref_key(first)}).", evidence=[ref_key(s) for s in found])
    return result(crit, "not-met", "No ResearchSubject of this patient in another study has "
                  f"status {', '.join(wanted)}.")


rule("enrolled-elsewhere", {
    "statuses": Param("strs", required=True, choices=SUBJECT_STATUSES),
})(enrolled_elsewhere)
