"""The access audit: who saw or changed which patient's record, apart from the service log.

Each entry is one JSON line written with a single append (`O_APPEND`, one `write`), so the
lines of several gunicorn workers appending to one file never interleave; `AUDIT_LOG=-` writes
them to stdout the same way. With `AUDIT_FHIR=1` each entry is also sent to the FHIR server as
an AuditEvent by a background thread of the process: the page never waits for it. An
AuditEvent the server did not take (error, no answer, or still waiting when the process
stops) is recorded in the audit log by a `fhir-not-delivered` line naming the entry, and
counted (eligibility_audit_fhir_undelivered_total). Entries carry ids, never names.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.core.metrics import count_audit_undelivered
from service.core.settings import Settings
from service.fhir.api import FhirApi

log = logging.getLogger(__name__)

MAX_WAITING = 10_000  # AuditEvents waiting for the FHIR server; beyond: not delivered
BATCH = 50  # AuditEvents sent in one batch Bundle


def now_iso() -> str:
    """UTC now with milliseconds, as every audit line carries it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditTrail:
    """Append audit entries to AUDIT_LOG and, with AUDIT_FHIR=1, send them as AuditEvents."""

    def __init__(
        self,
        settings: Settings,
        client: Callable[[], FhirApi] | None = None,
        *,
        clock: Callable[[], str] = now_iso,
    ) -> None:
        self.target = settings.audit_log
        self.to_fhir = settings.audit_fhir and client is not None
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._waiting: queue.Queue[dict[str, Any]] = queue.Queue(MAX_WAITING)
        self._sender: threading.Thread | None = None

    # ------------------------------------------------------------------ the file

    def _descriptor(self) -> int:
        # Opened per process (gunicorn forks after the app may have been built).
        if self._fd is None or self._pid != os.getpid():
            if self.target == "-":
                self._fd = 1
            else:
                path = Path(self.target)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._pid = os.getpid()
        return self._fd

    def _append(self, line: dict[str, Any]) -> None:
        data = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            try:
                written = os.write(self._descriptor(), data)
                if written != len(data):
                    raise OSError(f"short write ({written} of {len(data)} bytes)")
            except OSError as exc:
                # The page is answered anyway; the operator sees why the entry is missing.
                log.error("audit entry %s could not be written to AUDIT_LOG: %s",
                          line.get("id"), exc)

    # ------------------------------------------------------------------ recording

    def record(
        self,
        *,
        action: str,
        pattern: str,
        user: str | None,
        patients: Iterable[str],
        outcome: str,
        request_id: str,
        status: int | None = None,
        path: str | None = None,
        address: str | None = None,
        study: str | None = None,
    ) -> dict[str, Any]:
        """Write one entry (and queue its AuditEvent); the entry as written."""
        entry: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "time": self._clock(),
            "event": "access",
            "user": user,
            "action": action,
            "pattern": pattern,
            "patients": sorted(dict.fromkeys(patients)),
            "outcome": outcome,
            "status": status,
            "request_id": request_id,
            "path": path,
            "address": address,
        }
        if study:
            entry["study"] = study
        if self.to_fhir:
            entry["fhir"] = "queued"
        self._append(entry)
        if self.to_fhir:
            self._queue(entry)
        return entry

    # ------------------------------------------------------------------ AuditEvents

    def _queue(self, entry: dict[str, Any]) -> None:
        self._start_sender()
        try:
            self._waiting.put_nowait(entry)
        except queue.Full:
            self._not_delivered([entry], "too many AuditEvents waiting for the FHIR server")

    def _start_sender(self) -> None:
        with self._lock:
            if self._sender is None or not self._sender.is_alive():
                self._sender = threading.Thread(target=self._send_loop, name="audit-events",
                                                 daemon=True)
                self._sender.start()
                atexit.register(self.close)

    def _send_loop(self) -> None:
        while True:
            first = self._waiting.get()
            batch = [first]
            while len(batch) < BATCH:
                try:
                    batch.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            self.deliver(batch)

    def deliver(self, batch: list[dict[str, Any]]) -> None:
        """Send these entries' AuditEvents now; record the ones the server did not take."""
        from service.fhir.audit_event import write_audit_events

        assert self._client is not None
        try:
            stored = write_audit_events(self._client(), batch)
        except Exception as exc:  # noqa: BLE001 - any failure: kept in the file, said so
            self._not_delivered(batch, f"{type(exc).__name__} from the FHIR server")
            return
        failed = [e for e, ok in zip(batch, stored, strict=True) if not ok]
        if failed:
            self._not_delivered(failed, "the FHIR server refused the AuditEvent")

    def _not_delivered(self, entries: Sequence[Mapping[str, Any]], reason: str) -> None:
        for entry in entries:
            count_audit_undelivered()
            self._append({"id": uuid.uuid4().hex, "time": self._clock(),
                          "event": "fhir-not-delivered", "entry": entry.get("id"),
                          "reason": reason})
        log.warning("%d AuditEvent(s) not written to the FHIR server (%s); the audit log "
                    "keeps the entries", len(entries), reason)

    def close(self) -> None:
        """At exit: entries still waiting are recorded as not delivered."""
        left = []
        while True:
            try:
                left.append(self._waiting.get_nowait())
            except queue.Empty:
                break
        if left:
            self._not_delivered(left, "the process stopped before sending")
