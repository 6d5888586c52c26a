"""Durable record of screening jobs: the store protocol and its records (SQLite or Redis stores).

huey deletes a message when a worker takes it, so a worker killed mid-task would lose it.
This store is the source of truth instead: a task is `queued` until a worker claims it
(`running` with a lease it keeps extending), then `done` or `failed`. A reaper puts tasks
whose lease ran out back to `queued` and re-sends them; claiming is atomic, so a duplicate
message is harmless.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
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
    def job_counts(self, job_id: str) -> dict[str, int]: ...
    def pending_count(self) -> int: ...
    def job_tasks_page(
        self, job_id: str, cursor: int, limit: int
    ) -> tuple[list[TaskRecord], int | None]: ...
    def purge_finished(self, before: float) -> int: ...
    def close(self) -> None: ...


def finished_before(tasks: Sequence[TaskRecord], before: float) -> bool:
    """Whether every task of a job is done or failed, the last of them before `before`."""
    return all(t.state in (DONE, FAILED) and t.updated < before for t in tasks)


# ---------------------------------------------------------------------------------------- SQLite

class OwnedTaskUpdates:
    """Task changes only the worker holding the lease may make; stores give `_update_owned`.

    `_now` is the store's clock (seconds since the epoch): the queue passes its own, so tests
    move a job through time with the public API instead of rewriting stored timestamps.
    """

    _now: Callable[[], float] = staticmethod(time.time)

    def _update_owned(self, task_id: str, worker: str, **changes: Any) -> bool:
        raise NotImplementedError

    def heartbeat(self, task_id: str, worker: str, lease: float) -> bool:
        return self._update_owned(task_id, worker, lease_until=self._now() + lease)

    def complete(self, task_id: str, worker: str, result: dict[str, Any]) -> bool:
        return self._update_owned(
            task_id, worker, state=DONE, result=result, error=None, lease_until=None
        )

    def fail(self, task_id: str, worker: str, error: str) -> bool:
        return self._update_owned(task_id, worker, state=FAILED, error=error, lease_until=None)
