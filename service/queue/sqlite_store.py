"""The embedded job store: tables beside huey's in one SQLite file (WAL, a connection a thread)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from service.queue.store import (
    QUEUED,
    RUNNING,
    JobRecord,
    OwnedTaskUpdates,
    TaskRecord,
)

_SQLITE_DDL = (
    """create table if not exists elig_job (
        id text primary key, data text not null, created real not null)""",
    """create table if not exists elig_task (
        id text primary key, job_id text not null, state text not null,
        not_before real not null, lease_until real, worker text, coalesce_key text,
        data text not null)""",
    "create index if not exists elig_task_job on elig_task (job_id)",
    "create index if not exists elig_task_state on elig_task (state, not_before)",
    "create index if not exists elig_task_coalesce on elig_task (coalesce_key, state)",
    """create table if not exists elig_lock (
        name text primary key, owner text not null, expires real not null)""",
    "create table if not exists elig_once (key text primary key, expires real not null)",
)


class SqliteJobStore(OwnedTaskUpdates):
    """The embedded store: tables beside huey's in one SQLite file (WAL, a connection a thread)."""

    def __init__(self, path: str, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._path = path
        self._uri = path.startswith("file:")
        if not self._uri:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # A shared-cache in-memory database lives as long as one connection to it stays open.
        self._keepalive = self._connect() if self._uri else None
        # Its tables lock as a whole (SQLITE_LOCKED, which the busy timeout never retries), so
        # there that one connection serves every thread, one call at a time.
        self._serial: AbstractContextManager[Any] = (
            threading.RLock() if self._uri else nullcontext()
        )
        with self._tx() as conn:
            for statement in _SQLITE_DDL:
                conn.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, timeout=30, isolation_level=None, check_same_thread=False, uri=self._uri
        )
        if not self._uri:
            conn.execute("pragma journal_mode=wal")
        conn.execute("pragma synchronous=full")
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._keepalive is not None:
            return self._keepalive
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._serial:
            conn = self._conn
            # IMMEDIATE takes the write lock up front, so read-then-write steps are atomic.
            conn.execute("begin immediate")
            try:
                yield conn
            except BaseException:
                conn.execute("rollback")
                raise
            conn.execute("commit")

    def _fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._serial:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def ping(self) -> None:
        self._fetch("select count(*) from elig_task")

    def add_job(
        self, job: JobRecord, tasks: Sequence[TaskRecord], coalesce_key: str | None = None
    ) -> tuple[str, list[str], bool]:
        with self._tx() as conn:
            if coalesce_key:
                row = conn.execute(
                    "select job_id, id from elig_task where coalesce_key = ? and state = ?"
                    " limit 1",
                    (coalesce_key, QUEUED),
                ).fetchone()
                if row:
                    return row[0], [row[1]], False
            conn.execute(
                "insert into elig_job (id, data, created) values (?, ?, ?)",
                (job.id, json.dumps(job.to_dict()), job.created),
            )
            conn.executemany(
                "insert into elig_task (id, job_id, state, not_before, lease_until, worker,"
                " coalesce_key, data) values (?, ?, ?, ?, null, null, ?, ?)",
                [
                    (t.id, t.job_id, t.state, t.not_before, coalesce_key,
                     json.dumps(t.to_dict()))
                    for t in tasks
                ],
            )
        return job.id, [t.id for t in tasks], True

    def get_job(self, job_id: str) -> JobRecord | None:
        rows = self._fetch("select data from elig_job where id = ?", (job_id,))
        return JobRecord.from_dict(json.loads(rows[0][0])) if rows else None

    def job_tasks(self, job_id: str) -> list[TaskRecord]:
        rows = self._fetch("select data from elig_task where job_id = ? order by rowid", (job_id,))
        return [TaskRecord.from_dict(json.loads(r[0])) for r in rows]

    def get_task(self, task_id: str) -> TaskRecord | None:
        rows = self._fetch("select data from elig_task where id = ?", (task_id,))
        return TaskRecord.from_dict(json.loads(rows[0][0])) if rows else None

    def _read(self, conn: sqlite3.Connection, task_id: str) -> TaskRecord | None:
        row = conn.execute("select data from elig_task where id = ?", (task_id,)).fetchone()
        return TaskRecord.from_dict(json.loads(row[0])) if row else None

    def _write(self, conn: sqlite3.Connection, task: TaskRecord) -> None:
        conn.execute(
            "update elig_task set state = ?, not_before = ?, lease_until = ?, worker = ?,"
            " data = ? where id = ?",
            (task.state, task.not_before, task.lease_until, task.worker,
             json.dumps(task.to_dict()), task.id),
        )

    def claim(self, task_id: str, worker: str, lease: float) -> TaskRecord | None:
        now = self._now()
        with self._tx() as conn:
            task = self._read(conn, task_id)
            if task is None or task.state != QUEUED or task.not_before > now + 1:
                return None
            task = replace(
                task, state=RUNNING, worker=worker, lease_until=now + lease, updated=now
            )
            self._write(conn, task)
            return task

    def _update_owned(self, task_id: str, worker: str, **changes: Any) -> bool:
        with self._tx() as conn:
            task = self._read(conn, task_id)
            if task is None or task.state != RUNNING or task.worker != worker:
                return False
            self._write(conn, replace(task, updated=self._now(), **changes))
            return True

    def requeue(
        self, task_id: str, worker: str, not_before: float, error: str | None, count: bool
    ) -> bool:
        with self._tx() as conn:
            task = self._read(conn, task_id)
            if task is None or task.state != RUNNING or task.worker != worker:
                return False
            self._write(conn, replace(
                task, state=QUEUED, worker=None, lease_until=None, not_before=not_before,
                error=error, attempts=task.attempts + (1 if count else 0), updated=self._now(),
            ))
            return True

    def reap_expired(self, now: float) -> list[str]:
        with self._tx() as conn:
            rows = conn.execute(
                "select data from elig_task where state = ? and lease_until < ?", (RUNNING, now)
            ).fetchall()
            reaped = []
            for (data,) in rows:
                task = TaskRecord.from_dict(json.loads(data))
                self._write(conn, replace(
                    task, state=QUEUED, worker=None, lease_until=None,
                    error="worker stopped before finishing; re-queued", updated=now,
                ))
                reaped.append(task.id)
            return reaped

    def queued_due(self, before: float) -> list[str]:
        rows = self._fetch(
            "select id from elig_task where state = ? and not_before < ?", (QUEUED, before)
        )
        return [r[0] for r in rows]

    def lock(self, name: str, owner: str, ttl: float) -> bool:
        now = self._now()
        with self._tx() as conn:
            row = conn.execute(
                "select owner, expires from elig_lock where name = ?", (name,)
            ).fetchone()
            if row and row[0] != owner and row[1] > now:
                return False
            conn.execute(
                "insert or replace into elig_lock (name, owner, expires) values (?, ?, ?)",
                (name, owner, now + ttl),
            )
            return True

    def unlock(self, name: str, owner: str) -> None:
        with self._tx() as conn:
            conn.execute("delete from elig_lock where name = ? and owner = ?", (name, owner))

    def remember_once(self, key: str, ttl: float) -> bool:
        now = self._now()
        with self._tx() as conn:
            conn.execute("delete from elig_once where expires < ?", (now,))
            row = conn.execute("select 1 from elig_once where key = ?", (key,)).fetchone()
            if row:
                return False
            conn.execute("insert into elig_once (key, expires) values (?, ?)", (key, now + ttl))
            return True

    def pending_count(self) -> int:
        """Tasks queued or running, of every job (the backlog /metrics reports)."""
        rows = self._fetch(
            "select count(*) from elig_task where state in (?, ?)", (QUEUED, RUNNING)
        )
        return int(rows[0][0])

    def job_counts(self, job_id: str) -> dict[str, int]:
        rows = self._fetch(
            "select state, count(*) from elig_task where job_id = ? group by state", (job_id,)
        )
        return {state: count for state, count in rows}

    def job_tasks_page(
        self, job_id: str, cursor: int, limit: int
    ) -> tuple[list[TaskRecord], int | None]:
        # The cursor is the rowid of the last task shown: stable while tasks change state.
        rows = self._fetch(
            "select rowid, data from elig_task where job_id = ? and rowid > ?"
            " order by rowid limit ?", (job_id, cursor, limit + 1),
        )
        tasks = [TaskRecord.from_dict(json.loads(r[1])) for r in rows[:limit]]
        return tasks, (rows[limit - 1][0] if len(rows) > limit else None)

    def purge_finished(self, before: float) -> int:
        with self._tx() as conn:
            # Jobs with no task left queued or running, whose newest task changed before the
            # cutoff (a task's `updated` lives in its JSON).
            rows = conn.execute(
                "select j.id from elig_job j where j.created < ? and not exists ("
                " select 1 from elig_task t where t.job_id = j.id and (t.state in (?, ?)"
                " or json_extract(t.data, '$.updated') >= ?))",
                (before, QUEUED, RUNNING, before),
            ).fetchall()
            ids = [r[0] for r in rows]
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                conn.execute(f"delete from elig_task where job_id in ({marks})", chunk)
                conn.execute(f"delete from elig_job where id in ({marks})", chunk)
            conn.execute("delete from elig_once where expires < ?", (self._now(),))
            conn.execute("delete from elig_lock where expires < ?", (self._now(),))
            return len(ids)
