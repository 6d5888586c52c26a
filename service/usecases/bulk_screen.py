"""`screen --all --bulk`: the candidates screened from a FHIR Bulk Data export
(docs/getting-started.md "The command line"), written as `screen --all` writes (candidates
only)."""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from service.fhir import research_subject as rs
from service.fhir.bulk_export import (
    BulkExport,
    BulkExportUnsupported,
    ExportFile,
    ExportRequest,
    Manifest,
    read_ndjson,
)
from service.fhir.candidates import diagnosis_matcher, holds_our_subject
from service.fhir.errors import FhirConflict, FhirError
from service.fhir.export_state import last_transaction_time, save_transaction_time
from service.fhir.queries import (
    ENROLMENT_LABEL,
    RECORD_TYPES,
    code_token,
    medication_ids_missing,
    query_string,
    record_queries,
)
from service.fhir.subjects import subject_of
from service.usecases.export_grouping import PatientGrouping
from service.usecases.screener import Screener
from service.usecases.screening import screen_results
from service.usecases.screening_failures import ScreeningFailure, failures_classified

log = logging.getLogger(__name__)

# Types read before the rest: they decide who is a candidate, so the other types' rows of
# anyone else are dropped as they arrive.
_DECIDING = ("Condition", "ResearchSubject")


class BulkScreeningError(Exception):
    """The bulk run cannot go on (one line for the CLI); nothing was written."""


@dataclass(frozen=True)
class BulkRow:
    """One screened candidate (or the error that stopped it); `finished` as screen_one's."""

    patient: str
    result: dict[str, Any] | None = None
    research_subjects: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    finished: bool = True
    # False for an incremental run's changed patient who is no candidate: checked, not screened.
    screened: bool = True


@dataclass
class BulkFigures:
    """What the run cost and found (the CLI's closing lines and the benchmark)."""

    requests: Counter[str] = field(default_factory=Counter)
    bytes_downloaded: int = 0
    resources: int = 0
    candidates: int = 0
    touched: int = 0
    transaction_time: str | None = None
    type_filter_refused: bool = False
    posted_kick_off: bool = False  # the filters went in a POST body (the GET URL was too long)
    since: str | None = None


def observation_matcher(codes: Sequence[str]) -> Callable[[dict[str, Any]], bool]:
    """Whether an Observation carries a code the mappings read (as the record search asks)."""
    # "system|" and "system|*" stand for any code of the system (a token search's meaning).
    any_code = {c.rstrip("*")[:-1] for c in codes if c.endswith(("|", "|*"))}
    exact = {tuple(c.rsplit("|", 1)) for c in codes if not c.endswith(("|", "|*"))}

    def matches(resource: dict[str, Any]) -> bool:
        for coding in (resource.get("code") or {}).get("coding") or ():
            if isinstance(coding, dict) and (coding.get("system") in any_code or (
                    coding.get("system"), coding.get("code")) in exact):
                return True
        return False

    return matches


def export_request(screener: Screener, group: str | None, since: str | None) -> ExportRequest:
    """The types the record read reads, Observations narrowed to the mapped codes."""
    types = ["Patient", *RECORD_TYPES, "ResearchSubject"]
    if group is None:
        # Medications belong to no patient compartment: a Group export leaves them out (they
        # are then searched by id); the system export carries them.
        types.append("Medication")
    codes = sorted({code_token(c) for c in screener.mappings.observation_codes() if c})
    # Commas inside one query are escaped: _typeFilter itself is a comma-separated list.
    filters = (f"Observation?{query_string([('code', ','.join(codes))]).replace(',', '%2C')}",
               ) if codes else ()
    return ExportRequest(tuple(types), filters, since, group)


class BulkScreening:
    """One bulk run: export, download, group by patient, then screen candidate by candidate."""

    def __init__(
        self,
        screener: Screener,
        *,
        as_of: date,
        studies: Sequence[str] | None,
        write: bool,
        group: str | None = None,
        since: str | None = None,
        sleep: Callable[[float], None] | None = None,
        on_progress: Callable[[str | None], None] = lambda text: None,
        workdir: Path | None = None,
        evaluated_at: datetime | None = None,
    ) -> None:
        self.screener = screener
        client: Any = screener.client()
        self.client = client
        self.as_of = as_of
        self.studies = tuple(studies) if studies else None
        self.keys = list(self.studies or screener.mappings.studies)
        self.write = write
        self.group = group
        self.evaluated_at = evaluated_at
        kwargs: dict[str, Any] = {"on_progress": on_progress}
        if sleep is not None:
            kwargs["sleep"] = sleep
        self.export = BulkExport(client, **kwargs)
        self.figures = BulkFigures()
        self._since_arg = since
        self._workdir = workdir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._grouping: PatientGrouping | None = None
        self._manifest: Manifest | None = None
        self._medications: dict[str, dict[str, Any]] = {}
        self._study_resources: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ export

    def prepare(self) -> int:
        """Export, download and group; the number of patients to screen."""
        if not hasattr(self.client, "send"):
            raise BulkScreeningError("this FHIR client cannot run a bulk export")
        if not self._offers_export():
            raise BulkExportUnsupported(
                "the FHIR server's CapabilityStatement offers no $export: it cannot export in "
                "bulk (screen --all without --bulk searches instead)")
        since = self._since_arg
        if since == "last":
            since = last_transaction_time(self.client, self.group)
            if since is None:
                raise BulkScreeningError(
                    "--since last: no successful bulk run is recorded yet; run without --since "
                    "first")
        self.figures.since = since
        request = export_request(self.screener, self.group, since)
        self.export.kick_off(request)
        try:
            manifest = self.export.wait()
            self._tmp = tempfile.TemporaryDirectory(prefix="bulk-", dir=self._workdir)
            folder = Path(self._tmp.name)
            files = folder / "files"
            files.mkdir()
            self.export.check_errors(manifest, files)
            downloaded = [(item, self.export.download(item, manifest, files))
                          for item in self._ordered(manifest.output)]
        except BaseException:
            # KeyboardInterrupt included: the server's job is not left running.
            self.export.cancel()
            self.close()
            raise
        self._manifest = manifest
        self.figures.transaction_time = manifest.transaction_time
        self.figures.type_filter_refused = self.export.type_filter_refused
        self.figures.posted_kick_off = self.export.posted_kick_off
        self._grouping = PatientGrouping(folder / "group.sqlite")
        self._load(downloaded, incremental=since is not None)
        self._note_costs()
        if not self.write:
            token = ",".join(f"{rs.STUDY_SYSTEM}|{k}" for k in self.keys)
            self._study_resources = list(self.client.search("ResearchStudy",
                                                            {"identifier": token}))
        if since is not None:
            self.figures.touched = sum(1 for _ in self._grouping.patients())
            return self.figures.touched
        self.figures.candidates = self._grouping.candidate_count()
        return self.figures.candidates

    def _offers_export(self) -> bool:
        from service.fhir.bulk_export import offers_export

        try:
            return offers_export(self.client.capabilities(), self.group)
        except FhirError:
            return True  # no readable CapabilityStatement: the kick-off will tell

    @staticmethod
    def _ordered(files: Sequence[ExportFile]) -> list[ExportFile]:
        return sorted(files, key=lambda f: (f.type not in _DECIDING, f.type != "Medication"))

    def _load(self, downloaded: Sequence[tuple[ExportFile, Path]], *, incremental: bool) -> None:
        assert self._grouping is not None
        grouping = self._grouping
        wanted = set(export_request(self.screener, self.group, None).types)
        is_diagnosis = diagnosis_matcher(self.screener.mappings, self.studies)
        is_observation = observation_matcher(self.screener.mappings.observation_codes())
        base = self.client.base_url

        def rows(path: Path, deciding: bool) -> Iterator[tuple[str, dict[str, Any]]]:
            for resource in read_ndjson(path):
                self.figures.resources += 1
                rtype = resource["resourceType"]
                if rtype not in wanted:
                    continue
                if rtype == "Observation" and not is_observation(resource):
                    continue  # filtered while reading (whole types exported without _typeFilter)
                patient = (resource.get("id") if rtype == "Patient"
                           else subject_of(resource, base))
                if not isinstance(patient, str):
                    continue  # names no patient of ours: never used for anyone
                if incremental and holds_our_subject(resource):
                    continue  # our own write-back (the last run's): no change to the record
                if deciding and (is_diagnosis(resource) or holds_our_subject(resource)):
                    grouping.add_candidates([patient])
                yield patient, resource

        for item, path in downloaded:
            if item.type == "Medication":
                grouping.add_medications(read_ndjson(path))
                continue
            deciding = item.type in _DECIDING
            grouping.add(rows(path, deciding and not incremental),
                         only_candidates=not deciding and not incremental)

    def _note_costs(self) -> None:
        self.figures.requests.update(self.export.requests)
        self.figures.bytes_downloaded = self.export.bytes_downloaded

    # ------------------------------------------------------------------ screening

    def rows(self) -> Iterator[BulkRow]:
        """Screen each patient and yield its row; the run's instant is kept when all succeeded
        (a failed patient is screened again by the next `--since last`)."""
        assert self._grouping is not None and self._manifest is not None
        failed = 0
        refs = self._refs()
        try:
            if self.figures.since is None:
                for pid, resources in self._grouping.records():
                    row = self._screen_exported(pid, resources, refs)
                    failed += bool(row.error)
                    yield row
            else:
                for pid in self._grouping.patients():
                    changed = self._screen_read(pid, refs)
                    if changed is None:
                        # Not a candidate: nothing to screen or write (counted as checked).
                        yield BulkRow(pid, screened=False)
                        continue
                    failed += bool(changed.error)
                    yield changed
        finally:
            self.close()
        if self.write and not failed and self._manifest is not None:
            save_transaction_time(self.client, self.group, self._manifest.transaction_time)

    def _refs(self) -> dict[str, str]:
        if self.write:
            return self.screener.research_study_refs()
        return {}

    def _results(self, pid: str, resources: list[dict[str, Any]]) -> dict[str, list[Any]]:
        """The record as the per-patient read labels it, from exported resources."""
        results: dict[str, list[Any]] = {"Patient": [], ENROLMENT_LABEL: [],
                                         "ResearchSubject": []}
        for resource in resources:
            rtype = resource["resourceType"]
            if rtype == "ResearchSubject":
                results[ENROLMENT_LABEL].append(resource)
                if holds_our_subject(resource):
                    results["ResearchSubject"].append(resource)
            else:
                results.setdefault(rtype, []).append(resource)
        missing = medication_ids_missing(r for rs_ in results.values() for r in rs_)
        if missing:
            results["Medication"] = self._medications_by_id(missing)
        if self._study_resources:
            results["ResearchStudy"] = self._study_resources
        return results

    def _medications_by_id(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        assert self._grouping is not None
        found = {m["id"]: m for m in self._grouping.medications(ids)}
        found.update({m: self._medications[m] for m in ids if m in self._medications})
        wanted = [m for m in ids if m not in found]
        if wanted:
            # Not in the export (a Group export leaves them out): one search by id, kept.
            for resource in self.client.search(
                    "Medication", {"_id": ",".join(wanted), "_count": str(len(wanted))}):
                if resource.get("resourceType") == "Medication" and resource.get("id"):
                    self._medications[resource["id"]] = resource
                    found[resource["id"]] = resource
        return list(found.values())

    def _screen_exported(self, pid: str, resources: list[dict[str, Any]], refs: dict[str, str]
                         ) -> BulkRow:
        try:
            with failures_classified():
                results = self._results(pid, resources)
                if not results["Patient"]:
                    return BulkRow(pid, error="the export holds no Patient for this id; "
                                   "not screened")
                try:
                    outcome = screen_results(
                        self.client, self.screener.mappings, pid, self.keys, results,
                        as_of=self.as_of, studies=self.studies, write=self.write,
                        research_studies=refs, evaluated_at=self.evaluated_at,
                        sledai_window_days=self.screener.settings.sledai_window_days,
                        seeds_dir=self.screener.settings.seeds_dir)
                except FhirConflict:
                    if not self.write:
                        raise
                    # Changed since the export (someone's decision, another screening): read
                    # the record now and build on what is stored, never over it.
                    log.info("Patient/%s changed since the export; screening it afresh", pid)
                    self.figures.requests["conflict re-read"] += 1
                    out = self.screener.screen(pid, as_of=self.as_of, studies=self.studies)
                    return BulkRow(pid, out["result"], dict(out.get("researchSubjects") or {}))
        except ScreeningFailure as failure:
            return BulkRow(pid, error=failure.reason, finished=not failure.retryable)
        return BulkRow(pid, outcome.evaluation.to_json(outcome.research_studies),
                       dict(outcome.research_subjects))

    def _screen_read(self, pid: str, refs: dict[str, str]) -> BulkRow | None:
        """An incremental run's changed patient: its whole record read now (patient-scoped
        searches, which servers refusing population searches allow), screened if a candidate."""
        is_diagnosis = diagnosis_matcher(self.screener.mappings, self.studies)
        try:
            with failures_classified():
                queries = record_queries(
                    pid, self.screener.mappings.observation_codes(),
                    page_size=self.client.page_size,
                    research_subject_studies=self.keys)
                self.figures.requests["record read"] += 1
                results = self.client.run_queries(queries)
                candidate = any(is_diagnosis(r) for r in results.get("Condition", ())) or any(
                    holds_our_subject(r) for r in results.get(ENROLMENT_LABEL, ()))
                if not candidate:
                    return None
                self.figures.candidates += 1
                if self._study_resources:
                    results["ResearchStudy"] = self._study_resources
                outcome = screen_results(
                    self.client, self.screener.mappings, pid, self.keys, results,
                    as_of=self.as_of, studies=self.studies, write=self.write,
                    research_studies=refs, evaluated_at=self.evaluated_at,
                    sledai_window_days=self.screener.settings.sledai_window_days,
                    seeds_dir=self.screener.settings.seeds_dir)
        except ScreeningFailure as failure:
            return BulkRow(pid, error=failure.reason, finished=not failure.retryable)
        return BulkRow(pid, outcome.evaluation.to_json(outcome.research_studies),
                       dict(outcome.research_subjects))

    def close(self) -> None:
        """Remove the downloaded files and the grouping database."""
        if self._grouping is not None:
            self._grouping.close()
            self._grouping = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
