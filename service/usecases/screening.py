"""Screening orchestration: read a patient's record, evaluate it, write ResearchSubjects back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.core.metrics import count_write_backs
from service.core.settings import Settings
from service.engine.results import PatientEvaluation
from service.fhir import research_subject as rs
from service.fhir.api import FhirApi
from service.fhir.errors import (
    FhirConflict,
)
from service.fhir.queries import normalize_patient_id
from service.usecases.candidacy import NOT_A_CANDIDATE, is_candidate
from service.usecases.patient_record import read_record, record_of
from service.usecases.research_studies import (
    _create_research_studies,
    _studies_by_key,
    lost_a_race,
)
from service.usecases.research_studies import (
    ensure_research_studies as ensure_research_studies,  # the use case, re-exported
)

if TYPE_CHECKING:
    from service.mappings import Mappings

log = logging.getLogger(__name__)


class PatientLocks:
    """In-process locks, one per patient id, dropped again when nobody holds or waits."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, patient_id: str) -> Iterator[None]:
        """Serialise everything inside the block for this patient."""
        with self._guard:
            lock, users = self._locks.get(patient_id, (threading.Lock(), 0))
            self._locks[patient_id] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[patient_id]
                if users <= 1:
                    del self._locks[patient_id]
                else:
                    self._locks[patient_id] = (lock, users - 1)

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)


# One process-wide set: every screening in this process goes through it, whichever client or
# thread runs it. Several worker processes rely on the job queue's per-patient serialisation.
_PATIENT_LOCKS = PatientLocks()


@dataclass(frozen=True)
class ScreeningOutcome:
    """A screening's evaluation and, when written, where each study's ResearchSubject is."""

    evaluation: PatientEvaluation
    research_studies: dict[str, str] = field(default_factory=dict)
    research_subjects: dict[str, str] = field(default_factory=dict)
    # study key -> "created" | "updated" | "unchanged" (empty when nothing was to be written)
    write_back: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The eligibility body (docs/http-api.md), plus researchSubject / writeBack per study
        written."""
        body = self.evaluation.to_json(self.research_studies)
        for study in body["studies"]:
            key = study["study"]
            if key in self.research_subjects:
                study["researchSubject"] = self.research_subjects[key]
            if key in self.write_back:
                study["writeBack"] = self.write_back[key]
        return body


# ---------------------------------------------------------------------------- screening


def _existing_subjects(
    resources: Sequence[Mapping[str, Any]], keys: Sequence[str], patient_id: str
) -> dict[str, Mapping[str, Any]]:
    """The stored ResearchSubject of each study for this patient (duplicates are an error)."""
    out: dict[str, Mapping[str, Any]] = {}
    for key in keys:
        value = rs.research_subject_identifier_value(key, patient_id)
        matches = [
            r
            for r in resources
            if r.get("resourceType") == "ResearchSubject"
            and rs.has_identifier(r, rs.RESEARCH_SUBJECT_SYSTEM, value)
        ]
        if len(matches) > 1:
            ids = ", ".join(f"ResearchSubject/{m.get('id')}" for m in matches)
            raise FhirConflict(
                f"{len(matches)} ResearchSubjects carry identifier "
                f"{rs.RESEARCH_SUBJECT_SYSTEM}|{value} ({ids}); merge them before re-screening"
            )
        if matches:
            out[key] = matches[0]
    return out


class ChangedSinceRead(FhirConflict):
    """A ResearchSubject changed between this screening's read and its write (If-Match: 412).

    Unlike a 412 for several matches, reading again helps: the retry builds on the change."""


def screen_patient(
    client: FhirApi,
    mappings: Mappings,
    patient_id: str,
    *,
    as_of: date,
    studies: Sequence[str] | None = None,
    write: bool,
    research_studies: Mapping[str, str] | None = None,
    evaluated_at: datetime | None = None,
    locks: PatientLocks | None = None,
    every_patient: bool = False,
    sledai_window_days: int = Settings.sledai_window_days,
    seeds_dir: Path | None = Settings.seeds_dir,
) -> ScreeningOutcome:
    """Read the record (<= 2 requests unpaged), evaluate, and with write=True write back (1).

    A FHIR failure while reading raises before anything is written. Write-back is one
    transaction of conditional updates, skipping studies whose stored result is unchanged;
    screenings of one patient in this process are serialised. When the write loses a race
    with another writer (HAPI answers 409), or a ResearchSubject changed since it was read
    (every update carries If-Match: 412), the record is read again and the write retried once,
    so it builds on what the other writer stored and never overwrites a person's decision.

    Only a candidate's ResearchSubject is written (service.usecases.candidacy,
    docs/candidates-and-triggers.md); another study answers `not-a-candidate`. `every_patient` (the
    explicit `screen --every-patient`) writes for every living patient.
    """
    pid = normalize_patient_id(patient_id)
    keys = list(studies) if studies else list(mappings.studies)
    unknown = [k for k in keys if k not in mappings.studies]
    if unknown:
        raise ValueError(f"unknown study key(s): {', '.join(unknown)}")
    options = {"sledai_window_days": sledai_window_days, "seeds_dir": seeds_dir}
    guard = (locks or _PATIENT_LOCKS).hold(pid) if write else nullcontext()
    with guard:
        try:
            return _screen_once(client, mappings, pid, keys, as_of=as_of, studies=studies,
                                write=write, research_studies=research_studies,
                                evaluated_at=evaluated_at, options=options,
                                every_patient=every_patient)
        except FhirConflict as exc:
            # 409: another writer won the race; 412: a ResearchSubject changed since it was
            # read (If-Match), e.g. a person set its workflow status. Either way, read again.
            if not (write and (lost_a_race(exc) or isinstance(exc, ChangedSinceRead))):
                raise
            log.info("Patient/%s: a concurrent write won (HTTP %s); reading again", pid,
                     exc.status)
        return _screen_once(client, mappings, pid, keys, as_of=as_of, studies=studies,
                            write=write, research_studies=research_studies,
                            evaluated_at=evaluated_at, options=options,
                            every_patient=every_patient)


def _screen_once(
    client: FhirApi,
    mappings: Mappings,
    pid: str,
    keys: list[str],
    *,
    as_of: date,
    studies: Sequence[str] | None,
    write: bool,
    research_studies: Mapping[str, str] | None,
    evaluated_at: datetime | None,
    options: Mapping[str, Any],
    every_patient: bool = False,
) -> ScreeningOutcome:
    """One read, evaluation and (with write=True) write-back of screen_patient."""
    known_refs = dict(research_studies or {})
    lookup = [k for k in keys if k not in known_refs]
    _, results = read_record(
        client, mappings, pid,
        research_subject_studies=keys if write else (),
        research_study_keys=lookup,
    )
    return screen_results(client, mappings, pid, keys, results, as_of=as_of, studies=studies,
                          write=write, research_studies=known_refs, evaluated_at=evaluated_at,
                          every_patient=every_patient, **options)


def screen_results(
    client: FhirApi,
    mappings: Mappings,
    pid: str,
    keys: list[str],
    results: Mapping[str, list[dict[str, Any]]],
    *,
    as_of: date,
    studies: Sequence[str] | None,
    write: bool,
    research_studies: Mapping[str, str] | None,
    evaluated_at: datetime | None,
    every_patient: bool = False,
    sledai_window_days: int = Settings.sledai_window_days,
    seeds_dir: Path | None = Settings.seeds_dir,
) -> ScreeningOutcome:
    """Evaluate a record already read (labelled as `record_queries` labels it) and, with
    write=True, write back: the part of a screening after the read, shared by the per-patient
    read and the bulk export (whose stored ResearchSubjects come from the export). Each update
    carries If-Match with the version read, so a change made since is a conflict, never
    overwritten. Only a candidate's ResearchSubjects are written
    (service.usecases.candidacy); `every_patient` writes for every living patient."""
    from service.engine.evaluate import evaluate_patient

    known_refs = dict(research_studies or {})
    lookup = [k for k in keys if k not in known_refs]
    # Only resources about this patient (subject relative or on our FHIR base).
    record = record_of(client, results, pid)
    refs = {**known_refs, **_studies_by_key(results.get("ResearchStudy", []), lookup)}
    # The refs let a confirmation that names a study in Observation.focus count for it.
    evaluation = evaluate_patient(
        record, mappings, as_of, studies=keys if studies else None, patient_id=pid,
        research_studies=refs, sledai_window_days=sledai_window_days,
    )
    if not write:
        return ScreeningOutcome(evaluation, research_studies={k: refs[k] for k in refs})
    existing = _existing_subjects(results.get("ResearchSubject", []), keys, pid)
    write_back: dict[str, str] = {}
    chosen = []
    for study in evaluation.studies:
        if is_candidate(study, mappings.studies[study.study], deceased=evaluation.deceased,
                        has_subject=study.study in existing, every_patient=every_patient):
            chosen.append(study)
        else:
            write_back[study.study] = NOT_A_CANDIDATE
    # A ResearchStudy is created only when something is written that refers to it.
    missing = [s.study for s in chosen if s.study not in refs]
    if missing:
        refs.update(_create_research_studies(client, mappings, missing, seeds_dir))
    now = evaluated_at or datetime.now(UTC)
    subjects: dict[str, str] = {}
    to_write: list[tuple[str, str, dict[str, Any]]] = []
    for study in chosen:
        stored = existing.get(study.study)
        resource = rs.build_research_subject(
            study,
            patient_id=pid,
            as_of=as_of,
            research_study=refs[study.study],
            evaluated_at=now,
            existing=stored,
            narrative=False,  # built below, only for what is written
        )
        if stored is not None and rs.unchanged(resource, stored):
            subjects[study.study] = f"ResearchSubject/{stored.get('id')}"
            write_back[study.study] = "unchanged"
            continue
        resource = rs.with_narrative(resource, study, as_of)
        rs.validate_research_subject(resource)
        to_write.append((study.study, pid, resource))
    if to_write:
        answer = _write_transaction(client, pid, to_write, existing)
        for (key, _, _), written in zip(
            to_write, rs.parse_write_response(answer, len(to_write)), strict=True
        ):
            subjects[key] = written.reference
            write_back[key] = "created" if written.created else "updated"
    # The one place write-back results are decided: counted here for every path that writes.
    count_write_backs(write_back)
    log.info(
        "screened Patient/%s against %d studies; %d ResearchSubjects written",
        pid,
        len(evaluation.studies),
        len(to_write),
    )
    return ScreeningOutcome(
        evaluation,
        research_studies={k: refs[k] for k in keys if k in refs},
        research_subjects=subjects,
        write_back=write_back,
    )


def _write_transaction(
    client: FhirApi, pid: str, to_write: list[tuple[str, str, dict[str, Any]]],
    existing: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Write the ResearchSubjects in one transaction, each update naming the version read."""
    bundle = rs.write_transaction(to_write)
    # Every update names the version this screening read: a person's change made since (a
    # workflow status, a reason) is a conflict (412), never overwritten.
    for (key, _, _), entry in zip(to_write, bundle["entry"], strict=True):
        version = ((existing.get(key) or {}).get("meta") or {}).get("versionId")
        if version:
            entry["request"]["ifMatch"] = f'W/"{version}"'
    try:
        return client.transaction(bundle)
    except FhirConflict as exc:
        if exc.status == 412 and any("ifMatch" in e["request"] for e in bundle["entry"]):
            raise ChangedSinceRead(
                f"a ResearchSubject of Patient/{pid} changed since it was read", status=412
            ) from exc
        raise
