"""The shared job store for several workers on several machines (Redis WATCH/MULTI)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from service.queue.store import (
    QUEUED,
    RUNNING,
    JobRecord,
    OwnedTaskUpdates,
    TaskRecord,
    finished_before,
)


class RedisJobStore(OwnedTaskUpdates):
    """The shared store for several workers on several machines (WATCH/MULTI transactions)."""

    PREFIX = "elig:"

    def __init__(self, url: str, now: Callable[[], float] = time.time) -> None:
        import redis

        self._now = now
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
                            task = self._get(pipe, _text(existing))
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
        ids = [_text(i) for i in self._conn.lrange(self._k("job", job_id, "tasks"), 0, -1)]
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
        now = self._now()

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
            return replace(task, updated=self._now(), **changes)

        return self._transition(task_id, change) is not None

    def requeue(
        self, task_id: str, worker: str, not_before: float, error: str | None, count: bool
    ) -> bool:
        def change(task: TaskRecord) -> TaskRecord | None:
            if task.state != RUNNING or task.worker != worker:
                return None
            return replace(
                task, state=QUEUED, worker=None, lease_until=None, not_before=not_before,
                error=error, attempts=task.attempts + (1 if count else 0), updated=self._now(),
            )

        return self._transition(task_id, change) is not None

    def reap_expired(self, now: float) -> list[str]:
        reaped = []
        for raw in self._conn.zrangebyscore(self._k("running"), "-inf", now):
            task_id = _text(raw)

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
        return [_text(r) for r in self._conn.zrangebyscore(self._k("queued"), "-inf", before)]

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

    def pending_count(self) -> int:
        """Tasks queued or running, of every job (the state indexes hold exactly those)."""
        return int(self._conn.zcard(self._k("queued"))) + int(
            self._conn.zcard(self._k("running")))

    def job_counts(self, job_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        key = self._k("job", job_id, "tasks")
        # In slices, so a large job is never held in memory at once.
        for start in range(0, self._conn.llen(key), 500):
            ids = [_text(i) for i in self._conn.lrange(key, start, start + 499)]
            for raw in self._conn.mget([self._k("task", i) for i in ids]):
                if raw:
                    state = json.loads(raw)["state"]
                    counts[state] = counts.get(state, 0) + 1
        return counts

    def job_tasks_page(
        self, job_id: str, cursor: int, limit: int
    ) -> tuple[list[TaskRecord], int | None]:
        # The cursor is a position in the job's task list (tasks are only ever appended).
        ids = [_text(i) for i in
               self._conn.lrange(self._k("job", job_id, "tasks"), cursor, cursor + limit)]
        shown = ids[:limit]
        raws = self._conn.mget([self._k("task", i) for i in shown]) if shown else []
        tasks = [TaskRecord.from_dict(json.loads(r)) for r in raws if r]
        return tasks, (cursor + limit if len(ids) > limit else None)

    def purge_finished(self, before: float) -> int:
        purged = 0
        for raw_key in self._conn.scan_iter(match=self._k("job", "*"), count=500):
            key = _text(raw_key)
            job_id = key[len(self._k("job", "")):]
            if ":" in job_id:
                continue  # the job's task list
            job = self.get_job(job_id)
            if job is None or job.created >= before:
                continue
            task_ids = [_text(i) for i in self._conn.lrange(self._k("job", job_id, "tasks"),
                                                             0, -1)]
            tasks = [t for t in (self._get(self._conn, i) for i in task_ids) if t is not None]
            if not finished_before(tasks, before):
                continue
            self._conn.delete(key, self._k("job", job_id, "tasks"),
                              *(self._k("task", t) for t in task_ids))
            purged += 1
        return purged


def _text(raw: Any) -> str:
    """A Redis reply as text (the client answers bytes: decode_responses stays off)."""
    return raw.decode() if isinstance(raw, bytes) else str(raw)
