"""Evaluate a patient's record against the studies of the mappings (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from types import MappingProxyType
from typing import Any

import service.engine.rules  # noqa: F401  (importing the package registers every rule)
from service.engine.context import Context
from service.engine.deceased import deceased_result
from service.engine.decide import decide
from service.engine.model import Mappings
from service.engine.record import PatientRecord, RecordError, build_record
from service.engine.results import CriterionResult, PatientEvaluation, StudyResult
from service.engine.sledai_labs import WINDOW_DAYS

__all__ = ["RecordError", "UnknownStudyError", "evaluate_patient", "evaluate_record"]

# Malformed data of unexpected shapes must not crash a screening: such a criterion becomes
# `unknown` with a reason (a wrong `met`/`not-met` is never produced from it).
_DATA_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError)


class UnknownStudyError(ValueError):
    """A study key that the mappings do not define."""


def _select(mappings: Mappings, studies: Sequence[str] | None) -> list[str]:
    if not studies:
        return list(mappings.studies)
    unknown = [s for s in studies if s not in mappings.studies]
    if unknown:
        raise UnknownStudyError(
            f"unknown study {unknown[0]!r}; known: {', '.join(mappings.studies)}"
        )
    return list(dict.fromkeys(studies))


def evaluate_record(record: PatientRecord, mappings: Mappings, as_of: date,
                    studies: Sequence[str] | None = None, *, strict: bool = False,
                    research_studies: Mapping[str, str] | None = None,
                    sledai_window_days: int = WINDOW_DAYS) -> PatientEvaluation:
    """Evaluate an already built PatientRecord.

    `research_studies` maps study keys to their "ResearchStudy/<id>" on the FHIR server, so
    a confirmation naming a study by that reference counts for that study only.
    `sledai_window_days` is the look-back of the SLEDAI-2K laboratory lower bound.
    """
    keys = _select(mappings, studies)
    results = []
    uses = None
    # A deceased patient is ineligible for every study, whatever the criteria say
    # (docs/candidates-and-triggers.md).
    died = deceased_result(record.patient, record.patient_id, as_of)
    for key in keys:
        study = mappings.studies[key]
        # Medication uses do not depend on the study: computed once for all of them.
        ctx = Context(record=record, mappings=mappings, as_of=as_of, study=key, _uses=uses,
                      research_studies=MappingProxyType(dict(research_studies or {})),
                      sledai_window_days=sledai_window_days)
        criteria = [died] if died is not None else []
        for crit in study.criteria:
            try:
                criteria.append(decide(ctx, crit))
            except _DATA_ERRORS:
                if strict:
                    raise
                criteria.append(CriterionResult(
                    id=crit.id, result="unknown", kind=crit.kind, type=crit.type,
                    reason="The record's data for this criterion is malformed and could not "
                           "be read; review it by hand.",
                ))
        uses = ctx._uses
        results.append(StudyResult(study=key, title=study.title, criteria=tuple(criteria)))
    return PatientEvaluation(patient_id=record.patient_id, as_of=as_of, studies=tuple(results),
                             deceased=died is not None)


def evaluate_patient(
    resources: Iterable[dict[str, Any]],
    mappings: Mappings,
    as_of: date,
    studies: Sequence[str] | None = None,
    *,
    patient_id: str | None = None,
    aliases: Iterable[str] = (),
    strict: bool = False,
    research_studies: Mapping[str, str] | None = None,
    sledai_window_days: int = WINDOW_DAYS,
) -> PatientEvaluation:
    """Decide every criterion of the chosen studies (all by default) for one patient.

    Raises RecordError when the record has no Patient or is not FHIR R4, and
    UnknownStudyError for a study key the mappings do not define.
    """
    _select(mappings, studies)
    record = build_record(resources, mappings, patient_id=patient_id, aliases=aliases)
    return evaluate_record(record, mappings, as_of, studies, strict=strict,
                           research_studies=research_studies,
                           sledai_window_days=sledai_window_days)
