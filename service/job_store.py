"""Durable record of screening jobs: states, leases, results, patient locks (SQLite or Redis).

huey deletes a message when a worker takes it, so a worker killed mid-task would lose it.
This store is the source of truth instead: a task is `queued` until a worker claims it
(`running` with a lease it keeps extending), then `done` or `failed`. A reaper puts tasks
whose lease ran out back to `queued` and re-sends them; claiming is atomic, so a duplicate
message is harmless.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


def new_id() -> str:
    """A job or task id: 32 hex digits, safe in URLs and keys."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class TaskRecord:
    """One patient's screening inside a job."""

    id: str
    job_id: str
    patient: str
    studies: tuple[str, ...] | None = None
    as_of: str | None = None
    source: str = "api"
    state: str = QUEUED
    attempts: int = 0
    not_before: float = 0.0
    lease_until: float | None = None
    worker: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["studies"] = list(self.studies) if self.studies is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskRecord:
        data = dict(data)
        if data.get("studies") is not None:
            data["studies"] = tuple(data["studies"])
        return cls(**data)


@dataclass(frozen=True)
class JobRecord:
    """A submission: one patient (a trigger) or many (POST /screenings)."""

    id: str
    source: str
    as_of: str | None
    studies: tuple[str, ...] | None
    total: int
    created: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["studies"] = list(self.studies) if self.studies is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRecord:
        data = dict(data)
        if data.get("studies") is not None:
            data["studies"] = tuple(data["studies"])
        return cls(**data)


class JobStore(Protocol):
    """What the queue needs from durable storage."""

    def ping(self) -> None: ...
    def add_job(
        self, job: JobRecord, tasks: Sequence[TaskRecord], coalesce_key: str | None = None
    ) -> tuple[str, list[str], bool]: ...
    def get_job(self, job_id: str) -> JobRecord | None: ...
    def job_tasks(self, job_id: str) -> list[TaskRecord]: ...
    def get_task(self, task_id: str) -> TaskRecord | None: ...
    def claim(self, task_id: str, worker: str, lease: float) -> TaskRecord | None: ...
    def heartbeat(self, task_id: str, worker: str, lease: float) -> bool: ...
    def complete(self, task_id: str, worker: str, result: dict[str, Any]) -> bool: ...
    def fail(self, task_id: str, worker: str, error: str) -> bool: ...
    def requeue(
        self, task_id: str, worker: str, not_before: float, error: str | None, count: bool
    ) -> bool: ...
    def reap_expired(self, now: float) -> list[str]: ...
    def queued_due(self, before: float) -> list[str]: ...
    def lock(self, name: str, owner: str, ttl: float) -> bool: ...
    def unlock(self, name: str, owner: str) -> None: ...
    def remember_once(self, key: str, ttl: float) -> bool: ...
    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------- SQLite

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


class _OwnedTaskUpdates:
    """Task changes only the worker holding the lease may make; stores give `_update_owned`."""

    def _update_owned(self, task_id: str, worker: str, **changes: Any) -> bool:
        raise NotImplementedError

    def heartbeat(self, task_id: str, worker: str, lease: float) -> bool:
        return self._update_owned(task_id, worker, lease_until=time.time() + lease)

    def complete(self, task_id: str, worker: str, result: dict[str, Any]) -> bool:
        return self._update_owned(
            task_id, worker, state=DONE, result=result, error=None, lease_until=None
        )

    def fail(self, task_id: str, worker: str, error: str) -> bool:
        return self._update_owned(task_id, worker, state=FAILED, error=error, lease_until=None)


class SqliteJobStore(_OwnedTaskUpdates):
    """The embedded store: tables beside huey's in one SQLite file (WAL, a connection a thread)."""

    def __init__(self, path: str) -> None:
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
        now = time.time()
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
            self._write(conn, replace(task, updated=time.time(), **changes))
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
                error=error, attempts=task.attempts + (1 if count else 0), updated=time.time(),
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
        now = time.time()
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
        now = time.time()
        with self._tx() as conn:
            conn.execute("delete from elig_once where expires < ?", (now,))
            row = conn.execute("select 1 from elig_once where key = ?", (key,)).fetchone()
            if row:
                return False
            conn.execute("insert into elig_once (key, expires) values (?, ?)", (key, now + ttl))
            return True


# ----------------------------------------------------------------------------------------- Redis


class RedisJobStore(_OwnedTaskUpdates):
    """The shared store for several workers on several machines (WATCH/MULTI transactions)."""

    PREFIX = "elig:"

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis
        self._conn = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)

    def _k(self, *parts: str) -> str:
        return self.PREFIX + ":".join(parts)

    def close(self) -> None:
        self._conn.close()

    def ping(self) -> None:
        self._conn.ping()

    def add_job(
        self, job: JobRecord, tasks: Sequence[TaskRecord], coalesce_key: str | None = None
    ) -> tuple[str, list[str], bool]:
        ckey = self._k("coalesce", coalesce_key) if coalesce_key else None
        with self._conn.pipeline() as pipe:
            while True:
                try:
                    if ckey:
                        pipe.watch(ckey)
                        existing = pipe.get(ckey)
                        if existing:
                            task = self._get(pipe, existing.decode())
                            if task is not None and task.state == QUEUED:
                                pipe.unwatch()
                                return task.job_id, [task.id], False
                    pipe.multi()
                    pipe.set(self._k("job", job.id), json.dumps(job.to_dict()))
                    for t in tasks:
                        pipe.set(self._k("task", t.id), json.dumps(t.to_dict()))
                        pipe.rpush(self._k("job", job.id, "tasks"), t.id)
                        pipe.zadd(self._k("queued"), {t.id: t.not_before})
                    if ckey:
                        pipe.set(ckey, tasks[0].id, ex=86400)
                    pipe.execute()
                    return job.id, [t.id for t in tasks], True
                except self._redis.WatchError:
                    continue

    def get_job(self, job_id: str) -> JobRecord | None:
        raw = self._conn.get(self._k("job", job_id))
        return JobRecord.from_dict(json.loads(raw)) if raw else None

    def job_tasks(self, job_id: str) -> list[TaskRecord]:
        ids = [i.decode() for i in self._conn.lrange(self._k("job", job_id, "tasks"), 0, -1)]
        if not ids:
            return []
        raws = self._conn.mget([self._k("task", i) for i in ids])
        return [TaskRecord.from_dict(json.loads(r)) for r in raws if r]

    def _get(self, conn: Any, task_id: str) -> TaskRecord | None:
        raw = conn.get(self._k("task", task_id))
        return TaskRecord.from_dict(json.loads(raw)) if raw else None

    def get_task(self, task_id: str) -> TaskRecord | None:
        return self._get(self._conn, task_id)

    def _transition(self, task_id: str, change: Any) -> TaskRecord | None:
        """Apply change(task) -> new task or None atomically; keep the state indexes in step."""
        key = self._k("task", task_id)
        with self._conn.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    task = self._get(pipe, task_id)
                    new = change(task) if task is not None else None
                    if new is None:
                        pipe.unwatch()
                        return None
                    pipe.multi()
                    pipe.set(key, json.dumps(new.to_dict()))
                    pipe.zrem(self._k("queued"), task_id)
                    pipe.zrem(self._k("running"), task_id)
                    if new.state == QUEUED:
                        pipe.zadd(self._k("queued"), {task_id: new.not_before})
                    elif new.state == RUNNING:
                        pipe.zadd(self._k("running"), {task_id: new.lease_until or 0})
                    pipe.execute()
                    return new
                except self._redis.WatchError:
                    continue

    def claim(self, task_id: str, worker: str, lease: float) -> TaskRecord | None:
        now = time.time()

        def change(task: TaskRecord) -> TaskRecord | None:
            if task.state != QUEUED or task.not_before > now + 1:
                return None
            return replace(task, state=RUNNING, worker=worker, lease_until=now + lease,
                           updated=now)

        claimed = self._transition(task_id, change)
        if claimed is not None:
            # Later triggers for this patient must start a new screening, not join this one.
            self._conn.delete(self._k("coalesce", f"patient:{claimed.patient}"))
        return claimed

    def _update_owned(self, task_id: str, worker: str, **changes: Any) -> bool:
        def change(task: TaskRecord) -> TaskRecord | None:
            if task.state != RUNNING or task.worker != worker:
                return None
            return replace(task, updated=time.time(), **changes)

        return self._transition(task_id, change) is not None

    def requeue(
        self, task_id: str, worker: str, not_before: float, error: str | None, count: bool
    ) -> bool:
        def change(task: TaskRecord) -> TaskRecord | None:
            if task.state != RUNNING or task.worker != worker:
                return None
            return replace(
                task, state=QUEUED, worker=None, lease_until=None, not_before=not_before,
                error=error, attempts=task.attempts + (1 if count else 0), updated=time.time(),
            )

        return self._transition(task_id, change) is not None

    def reap_expired(self, now: float) -> list[str]:
        reaped = []
        for raw in self._conn.zrangebyscore(self._k("running"), "-inf", now):
            task_id = raw.decode()

            def change(task: TaskRecord) -> TaskRecord | None:
                if task.state != RUNNING or (task.lease_until or 0) >= now:
                    return None
                return replace(
                    task, state=QUEUED, worker=None, lease_until=None,
                    error="worker stopped before finishing; re-queued", updated=now,
                )

            if self._transition(task_id, change) is not None:
                reaped.append(task_id)
        return reaped

    def queued_due(self, before: float) -> list[str]:
        return [r.decode() for r in self._conn.zrangebyscore(self._k("queued"), "-inf", before)]

    def lock(self, name: str, owner: str, ttl: float) -> bool:
        key = self._k("lock", name)
        if self._conn.set(key, owner, nx=True, px=int(ttl * 1000)):
            return True
        # Re-entrant for the same owner: extend the lease it already holds.
        with self._conn.pipeline() as pipe:
            try:
                pipe.watch(key)
                if pipe.get(key) != owner.encode():
                    pipe.unwatch()
                    return False
                pipe.multi()
                pipe.set(key, owner, px=int(ttl * 1000))
                pipe.execute()
                return True
            except self._redis.WatchError:
                return False

    def unlock(self, name: str, owner: str) -> None:
        key = self._k("lock", name)
        with self._conn.pipeline() as pipe:
            try:
                pipe.watch(key)
                if pipe.get(key) == owner.encode():
                    pipe.multi()
                    pipe.delete(key)
                    pipe.execute()
                else:
                    pipe.unwatch()
            except self._redis.WatchError:
                pass  # someone else took it after our lease ran out: not ours to delete

    def remember_once(self, key: str, ttl: float) -> bool:
        return bool(self._conn.set(self._k("once", key), b"1", nx=True, px=int(ttl * 1000)))
