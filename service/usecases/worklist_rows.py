"""A study's worklist rows: read in full once, then each view asks the FHIR server what changed.

FHIR stays the source of truth. Every view sends one search for the study's ResearchSubjects
updated since the newest `meta.lastUpdated` already held, so a result written by any worker or
trigger shows at the next view. Until a search made OVERLAP after that stamp was first seen
has come back with nothing newer, the search reaches OVERLAP further back, for a write stamped
before it became visible (a transaction committing late); after that only from the stamp on,
so an idle list costs one small search a view.
What such a search cannot see, a deleted ResearchSubject or a renamed Patient, shows after the
next full read, which a view starts in the background once the last is FULL_READ_SECONDS old.
A failed read of a view serves nothing held: the error reaches the page as before.
The first full read of a process runs beside the view too: the view waits FIRST_VIEW_WAIT for
it, then says the list is still being read (a large study takes longer than a page should).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from service.usecases import study_funnel
from service.usecases.subject_rows import Row, patient_name, row_of

log = logging.getLogger(__name__)
FHIR_PAGE = 500  # ResearchSubjects per FHIR search page (with their Patients included)
FULL_READ_SECONDS = 300.0  # deletions and Patient renames show at most this late
OVERLAP = timedelta(seconds=5)  # writes stamped up to this long before they were searchable
FIRST_VIEW_WAIT = 3.0  # seconds a view waits for the process's first full read of a study


class StillReading(Exception):
    """The first full read of the study is still running: the page says so and reloads."""


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
    # What the log's funnel and CSV need of the history, read now (the resource is not kept).
    line = replace(study_funnel.log_line(resource), history=())
    return replace(row, criteria=open_, resource={}, log_line=line)


@dataclass
class StudyRows:
    """What one process holds of a study: rows by ResearchSubject, and when it read them."""

    rows: dict[str, Row] = field(default_factory=dict)
    newest: datetime | None = None  # the newest meta.lastUpdated seen (the server's clock)
    newest_seen: datetime | None = None  # when it was first seen (the pages' clock)
    settled: bool = False  # nothing stamped before `newest` can still appear
    full_read: datetime | None = None  # when this process last read the study in full
    ordered: list[Row] | None = None  # closest first; None after a change
    rereading: bool = False  # a full read runs in the background
    first_read: Future[None] | None = None  # the first full read, until it has succeeded

    def take(self, resources: Iterable[Mapping[str, Any]], now: datetime) -> int:
        """Add or replace the ResearchSubjects of a search answer; how many were rows.

        Streams: each resource becomes its slim row (or its Patient's name) as it arrives, so
        a full read never holds more than one page of whole resources.
        """
        names: dict[str, str] = {}
        rows: list[Row] = []
        for resource in resources:
            if resource.get("resourceType") == "Patient":
                names[str(resource.get("id"))] = patient_name(resource)
            elif resource.get("resourceType") == "ResearchSubject":
                meta = resource.get("meta") or {}
                held = self.rows.get(f"ResearchSubject/{resource.get('id')}")
                if (held and held.version == meta.get("versionId")
                        and held.last_updated == meta.get("lastUpdated")):
                    continue  # the version already held (read again by the overlap)
                row = worklist_row(resource, {})
                if row is not None:
                    rows.append(row)
        for row in rows:
            held = self.rows.get(row.subject_ref)
            if row.patient_id in names:
                row = replace(row, patient_name=names[row.patient_id])
            elif held and held.patient_id == row.patient_id:
                row = replace(row, patient_name=held.patient_name)  # no Patient included
            self.rows[row.subject_ref] = row
            stamp = _instant(row.last_updated)
            if stamp is not None and (self.newest is None or stamp > self.newest):
                self.newest, self.newest_seen, self.settled = stamp, now, False
        if rows:
            self.ordered = None
        return len(rows)

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


def in_background(task: Callable[[], None]) -> None:
    """Run the periodic full read on its own thread: no view waits for it."""
    threading.Thread(target=task, daemon=True, name="worklist-full-read").start()


class RowCache:
    """Per-process rows of each study; one reader per study at a time (thread-safe)."""

    def __init__(self, *, full_read_seconds: float = FULL_READ_SECONDS,
                 run_later: Callable[[Callable[[], None]], None] = in_background,
                 first_view_wait: float = FIRST_VIEW_WAIT) -> None:
        self._full_read = timedelta(seconds=full_read_seconds)
        self._run_later = run_later  # tests run the full read at once
        self._first_view_wait = first_view_wait
        self._lock = threading.Lock()
        self._studies: dict[str, tuple[threading.RLock, StudyRows]] = {}

    def _entry(self, study_ref: str) -> tuple[threading.RLock, StudyRows]:
        with self._lock:
            if study_ref not in self._studies:
                self._studies[study_ref] = (threading.RLock(), StudyRows())
            return self._studies[study_ref]

    def rows(self, client: Any, study_ref: str, now: datetime) -> tuple[list[Row], datetime]:
        """The study's rows as the FHIR server has them now, closest first; the full read's time.

        The first view starts the whole list's read and waits FIRST_VIEW_WAIT for it
        (StillReading after that); later ones read what changed, and one of them
        every FULL_READ_SECONDS starts a full read in the background (`now` is the pages'
        clock; a clock set back starts one too).
        """
        lock, held = self._entry(study_ref)
        with lock:
            if held.full_read is None or held.newest is None:
                if held.first_read is None:
                    held.first_read = self._start(
                        lambda: self._read_all(client, study_ref, held, now))
                first = held.first_read
            else:
                held.first_read = None  # done: the rows are held
                return self._changes(client, study_ref, held, now)
        # Waited for outside the lock: the read takes it to store its rows.
        try:
            first.result(timeout=self._first_view_wait)
        except FutureTimeout:
            raise StillReading(study_ref) from None
        except Exception:
            with lock:  # failed: the next view starts it again, and this one shows the error
                if held.first_read is first:
                    held.first_read = None
            raise
        with lock:
            if held.first_read is first:
                held.first_read = None
            return held.sorted_rows(), held.full_read or now

    def _start(self, task: Callable[[], None]) -> Future[None]:
        """Run `task` with run_later; its outcome as a Future."""
        outcome: Future[None] = Future()

        def run() -> None:
            try:
                task()
            except Exception as exc:
                outcome.set_exception(exc)
            else:
                outcome.set_result(None)

        self._run_later(run)
        return outcome

    def _changes(self, client: Any, study_ref: str, held: StudyRows, now: datetime
                 ) -> tuple[list[Row], datetime]:
        """Read what changed since the newest stamp held (the lock is held)."""
        assert held.full_read is not None and held.newest is not None
        newest, reach = held.newest, timedelta(0) if held.settled else OVERLAP
        since = (newest - reach).astimezone(UTC).isoformat(timespec="milliseconds")
        held.take(client.search("ResearchSubject", [
            *_query(study_ref), ("_lastUpdated", "ge" + since.replace("+00:00", "Z"))]), now)
        if (held.newest == newest and held.newest_seen is not None
                and now - held.newest_seen >= OVERLAP):
            held.settled = True
        if not held.rereading and not timedelta(0) <= now - held.full_read < self._full_read:
            held.rereading = True
            self._run_later(lambda: self._reread(client, study_ref, held, now))
        return held.sorted_rows(), held.full_read

    def _read_all(self, client: Any, study_ref: str, held: StudyRows, now: datetime) -> None:
        fresh = StudyRows()
        # Paged without search's caps (a record's 50 pages, 20,000 resources): a study screened
        # with --every-patient holds a ResearchSubject for every patient of the hospital.
        fresh.take(client.search_population("ResearchSubject", _query(study_ref), includes=True),
                   now)
        lock, _ = self._entry(study_ref)
        with lock:
            # Changes read meanwhile are newer than fresh.newest: the next view reads them again.
            held.rows, held.newest, held.ordered = fresh.rows, fresh.newest, None
            held.newest_seen, held.settled = now, False
            held.full_read = now

    def _reread(self, client: Any, study_ref: str, held: StudyRows, now: datetime) -> None:
        try:
            self._read_all(client, study_ref, held, now)
        except Exception as exc:  # a failed background read is retried by the next view
            log.warning("worklist full read of %s failed: %s", study_ref, type(exc).__name__)
        finally:
            held.rereading = False


def _query(study_ref: str) -> list[tuple[str, str]]:
    return [("study", study_ref), ("_include", "ResearchSubject:individual"),
            ("_count", str(FHIR_PAGE))]


def study_rows(cache: RowCache, screener: Any, study_ref: str, now: datetime
               ) -> tuple[list[Row], datetime]:
    """The worklist's read of one study: its rows as the FHIR server has them now (through
    this process's cache), closest first, and when the whole list was last read."""
    return cache.rows(screener.client(), study_ref, now)
