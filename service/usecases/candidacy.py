"""Who gets a ResearchSubject: the one decision every writing path goes through (see
docs/candidates-and-triggers.md)."""

from __future__ import annotations

from service.engine.model import StudyMapping
from service.engine.results import StudyResult

# The writeBack word of a study whose ResearchSubject was not written: not a candidate.
NOT_A_CANDIDATE = "not-a-candidate"
# Results of a diagnosis criterion that make a candidate: the record holds the diagnosis, or
# holds something that may be it (provisional, text only). `not-met`: no such diagnosis.
CANDIDATE_RESULTS = ("met", "unknown")


def is_candidate(study: StudyResult, mapping: StudyMapping, *, deceased: bool,
                 has_subject: bool, every_patient: bool = False) -> bool:
    """True when this study's ResearchSubject may be written for this patient.

    One of ours already exists: always (a result that no longer holds is updated, never left
    stale; a deceased patient's gets the computed `ineligible`). Otherwise never for a deceased
    patient; with `every_patient` (`screen --every-patient`, an explicit request) for everyone
    else; and otherwise only when a declared diagnosis criterion is `met` or `unknown`.
    """
    if has_subject:
        return True
    if deceased:
        return False
    if every_patient:
        return True
    wanted = set(mapping.diagnosis_criteria)
    return any(c.id in wanted and c.result in CANDIDATE_RESULTS for c in study.criteria)
