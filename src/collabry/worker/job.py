"""What a job is, and what its body receives while it runs one slot."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from ..config import Settings
from ..db.client import Database

if TYPE_CHECKING:
    from ..engine_client import EngineClient
    from ..realtime.emitter import Emitter


class CatchUp(StrEnum):
    """What a run does about slots missed while no worker ran (downtime, a stopped timer)."""

    ALL = "all"  # run every missed slot in the catch-up window, oldest first
    LATEST = "latest"  # run only the most recent slot; older missed slots are skipped


@dataclass(frozen=True)
class Job:
    name: str
    body: Callable[[JobContext], Awaitable[None]]
    schedule: str  # default; COLLABRY_WORKER_SCHEDULES overrides it
    catch_up: CatchUp = CatchUp.LATEST
    catch_up_window: timedelta = timedelta(hours=6)
    lease: timedelta = timedelta(minutes=5)  # a claim not renewed for this long may be taken over
    timeout: timedelta = timedelta(minutes=10)  # a slot running longer is cancelled and counts as failed
    max_attempts: int = 3
    retry_after: timedelta = timedelta(minutes=1)  # a failed slot is retried after this (by any host)
    host_scoped: bool = False  # the job works on this host's files: one ledger per host
    description: str = ""


class Clock:
    """UTC wall time, optionally shifted (``--now``) so a run can be replayed at a chosen instant."""

    def __init__(self, pretend: datetime | None = None) -> None:
        self.offset = (pretend - datetime.now(UTC)) if pretend is not None else timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class CrashHook:
    """Fault injection for the crash tests: ``COLLABRY_WORKER_CRASH_AFTER_ITEMS=N`` (or ``JOB:N``)
    makes the process exit abruptly, without any cleanup, right after its N-th finished item.
    Unset in production, where it costs one comparison per item."""

    def __init__(self, spec: str | None) -> None:
        self.job: str | None = None
        self.after = 0
        self.seen = 0
        if spec:
            job, _, count = spec.rpartition(":")
            self.job = job or None
            self.after = int(count)

    def item_done(self, job: str) -> None:
        if self.after and (self.job is None or self.job == job):
            self.seen += 1
            if self.seen >= self.after:
                os._exit(70)

    @classmethod
    def from_env(cls) -> CrashHook:
        return cls(os.environ.get("COLLABRY_WORKER_CRASH_AFTER_ITEMS"))


@dataclass
class JobContext:
    """One run of one slot. Job bodies count what they did with ``done(kind)``."""

    job: Job
    slot: datetime
    since: datetime  # the schedule's previous slot: this slot covers what happened in (since, slot]
    settings: Settings
    db: Database
    redis: Redis
    clock: Clock
    emitter_factory: Callable[[], Emitter]  # shared by the run's jobs, created on first use
    engine_factory: Callable[[], EngineClient]
    crash_hook: CrashHook
    log: Any
    items: Counter[str] = field(default_factory=Counter)

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def emitter(self) -> Emitter:
        return self.emitter_factory()

    @property
    def engine(self) -> EngineClient:
        return self.engine_factory()

    def done(self, kind: str, count: int = 1) -> None:
        """Record finished items; call it after an item's effects are stored."""
        self.items[kind] += count
        for _ in range(count):
            self.crash_hook.item_done(self.job.name)
