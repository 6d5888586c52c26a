"""A study's worklist rows: read in full once, then each view asks the FHIR server what changed.

FHIR stays the source of truth. Every view sends one search for the study's ResearchSubjects
updated since the newest `meta.lastUpdated` already held (less an overlap, for a write stamped
before it became visible), so a result written by any worker or trigger shows at the next view.
What such a search cannot see, a deleted ResearchSubject or a renamed Patient, shows after the
next full read, at most FULL_READ_SECONDS later. A failed read serves nothing stale: the error
reaches the page as before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from service.web.pages.subjects import Row, row_of

FHIR_PAGE = 500  # ResearchSubjects per FHIR search page (with their Patients included)
FULL_READ_SECONDS = 300.0  # deletions and Patient renames show at most this late
OVERLAP = timedelta(seconds=30)  # writes stamped up to this long before they were searchable


def worklist_row(resource: Mapping[str, Any], patients: Mapping[str, Mapping[str, Any]]
                 ) -> Row | None:
    """The Row without what the worklist and the log never show (met criteria, the resource).

    At 5,000 subjects a study the full rows held ~60 KB each in memory.
    """
    row = row_of(resource, patients)
    if row is None:
        return None
    open_ = tuple(replace(c, evidence=(), value=None, uln=None, uln_source=None)
                  for c in row.criteria if c.result in ("not-met", "unknown"))
    return replace(row, criteria=open_, resource={})


@dataclass
class StudyRows:
    """What one process holds of a study: rows by ResearchSubject, and when it read them."""

    rows: dict[str, Row] = field(default_factory=dict)
    newest: datetime | None = None  # the newest meta.lastUpdated seen (the server's clock)
    full_read: datetime | None = None  # when this process last read the study in full
    ordered: list[Row] | None = None  # closest first; None after a change

    def take(self, resources: Iterable[Mapping[str, Any]]) -> int:
        """Add or replace the ResearchSubjects of a search answer; how many were rows."""
        patients: dict[str, Mapping[str, Any]] = {}
        subjects = []
        for resource in resources:
            if resource.get("resourceType") == "Patient":
                patients[str(resource.get("id"))] = resource
            elif resource.get("resourceType") == "ResearchSubject":
                subjects.append(resource)
        taken = 0
        for subject in subjects:
            row = worklist_row(subject, patients)
            if row is None:
                continue
            held = self.rows.get(row.subject_ref)
            if not row.patient_name and held and held.patient_id == row.patient_id:
                row = replace(row, patient_name=held.patient_name)  # no Patient included
            self.rows[row.subject_ref] = row
            stamp = _instant(row.last_updated)
            if stamp is not None and (self.newest is None or stamp > self.newest):
                self.newest = stamp
            taken += 1
        if taken:
            self.ordered = None
        return taken

    def sorted_rows(self) -> list[Row]:
        """Closest candidates first (sorted again only after a change)."""
        if self.ordered is None:
            self.ordered = sorted(self.rows.values(), key=Row.closeness)
        return self.ordered


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else None


class RowCache:
    """Per-process rows of each study; one reader per study at a time (thread-safe)."""

    def __init__(self, *, full_read_seconds: float = FULL_READ_SECONDS) -> None:
        self._full_read = timedelta(seconds=full_read_seconds)
        self._lock = threading.Lock()
        self._studies: dict[str, tuple[threading.Lock, StudyRows]] = {}

    def _entry(self, study_ref: str) -> tuple[threading.Lock, StudyRows]:
        with self._lock:
            if study_ref not in self._studies:
                self._studies[study_ref] = (threading.Lock(), StudyRows())
            return self._studies[study_ref]

    def rows(self, client: Any, study_ref: str, now: datetime) -> tuple[list[Row], datetime]:
        """The study's rows as the FHIR server has them now, closest first; the full read's time.

        `now` is the pages' clock (injected in tests); a clock set back reads in full.
        """
        lock, held = self._entry(study_ref)
        with lock:
            base = [("study", study_ref), ("_include", "ResearchSubject:individual"),
                    ("_count", str(FHIR_PAGE))]
            if (held.full_read is None or held.newest is None
                    or not timedelta(0) <= now - held.full_read < self._full_read):
                fresh = StudyRows()
                fresh.take(client.search("ResearchSubject", base))
                held.rows, held.newest, held.ordered = fresh.rows, fresh.newest, None
                held.full_read = now
            else:
                since = (held.newest - OVERLAP).astimezone(UTC).isoformat(timespec="milliseconds")
                held.take(client.search("ResearchSubject", [
                    *base, ("_lastUpdated", "ge" + since.replace("+00:00", "Z"))]))
            return held.sorted_rows(), held.full_read or now
