"""An export's resources grouped by patient in an on-disk SQLite database (memory stays flat).

SQLite is the embedded engine here: rows go to a file, the patient index is built once after
loading, and reading them back in patient order streams from disk with a bounded page cache, so
a population of any size groups in a few megabytes (figures in docs/bulk-screening.md).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

_BATCH = 2000
# Page cache of SQLite in KiB (negative = KiB): the memory the grouping may hold.
_CACHE_KIB = 16 * 1024


class PatientGrouping:
    """Resources by patient id; candidates marked apart; Medications by id."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        for pragma in (f"cache_size=-{_CACHE_KIB}", "journal_mode=OFF", "synchronous=OFF",
                       "temp_store=FILE"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.executescript(
            "CREATE TABLE res (patient TEXT NOT NULL, body TEXT NOT NULL);"
            "CREATE TABLE cand (patient TEXT PRIMARY KEY) WITHOUT ROWID;"
            "CREATE TABLE med (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;")
        self._indexed = False

    def close(self) -> None:
        """Close the database (the caller removes its folder)."""
        self.db.close()

    def add_candidates(self, ids: Iterable[str]) -> None:
        """Mark patients as candidates (inside the load's transaction when one is open)."""
        own = not self.db.in_transaction
        if own:
            self.db.execute("BEGIN")
        self.db.executemany("INSERT OR IGNORE INTO cand VALUES (?)", ((i,) for i in ids))
        if own:
            self.db.execute("COMMIT")

    def add(self, rows: Iterable[tuple[str, dict[str, Any]]], *, only_candidates: bool) -> int:
        """Store (patient id, resource) rows, in batches; with only_candidates, rows of other
        patients are dropped as they arrive. The number stored."""
        sql = ("INSERT INTO res SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM cand WHERE patient = ?1)"
               if only_candidates else "INSERT INTO res VALUES (?1, ?2)")
        before = self.db.total_changes
        batch: list[tuple[str, str]] = []
        self.db.execute("BEGIN")
        for patient, resource in rows:
            batch.append((patient, json.dumps(resource, separators=(",", ":"))))
            if len(batch) >= _BATCH:
                self.db.executemany(sql, batch)
                batch.clear()
        if batch:
            self.db.executemany(sql, batch)
        self.db.execute("COMMIT")
        return self.db.total_changes - before

    def add_medications(self, resources: Iterable[dict[str, Any]]) -> None:
        """Keep Medications by id (they belong to no patient; records reference them)."""
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR REPLACE INTO med VALUES (?, ?)",
            ((str(r["id"]), json.dumps(r, separators=(",", ":"))) for r in resources
             if isinstance(r.get("id"), str)))
        self.db.execute("COMMIT")

    def medications(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """The stored Medications among these ids."""
        out = []
        for mid in ids:
            row = self.db.execute("SELECT body FROM med WHERE id = ?", (mid,)).fetchone()
            if row:
                out.append(json.loads(row[0]))
        return out

    def candidate_count(self) -> int:
        """How many patients are candidates."""
        return int(self.db.execute("SELECT count(*) FROM cand").fetchone()[0])

    def _index(self) -> None:
        if not self._indexed:
            # One index built after loading: cheaper than keeping it up to date row by row.
            self.db.execute("CREATE INDEX res_patient ON res (patient)")
            self._indexed = True

    def patients(self) -> Iterator[str]:
        """Every patient id that has a stored resource, in order."""
        self._index()
        for (patient,) in self.db.execute("SELECT DISTINCT patient FROM res ORDER BY patient"):
            yield patient

    def records(self, *, candidates_only: bool = True
                ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(patient id, resources) in patient order, one patient held at a time."""
        self._index()
        sql = ("SELECT c.patient, r.body FROM cand c LEFT JOIN res r ON r.patient = c.patient "
               "ORDER BY c.patient" if candidates_only
               else "SELECT patient, body FROM res ORDER BY patient")
        rows = self.db.execute(sql)
        for patient, group in groupby(rows, key=lambda row: row[0]):
            yield patient, [json.loads(body) for _, body in group if body is not None]
