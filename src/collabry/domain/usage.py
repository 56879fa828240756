"""Daily metering per user and UTC day: AI answers and uploads.

``consume`` is the only way a unit is spent: it either takes a unit (True) or writes nothing
(False), and concurrent callers can never take more than ``limit`` units between them: it is one
conditional update of the day's counter (``db.usage``). ``refund`` gives one back when the work it
paid for could not start.

AI requests are metered in Redis instead (``take_metered``/``refund_metered``, ``cache.quota``):
the request path runs one atomic script and writes nothing to the database; ``UsageWriteBehind``
(each gateway) and the worker's ``usage_persist`` job copy the counters to ``db.usage`` behind it,
and a counter Redis does not hold is seeded from that copy first. See docs/domain.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import structlog

from ..cache.quota import Counter, QuotaCounters
from ..config import PlanLimits, Settings
from ..db.client import Database, utcnow
from ..db.usage import DailyUsage
from ..db.users import UserRepository
from ..loops import Stop

log = structlog.get_logger("collabry.usage")

Kind = Literal["ai", "uploads"]
KINDS: tuple[Kind, ...] = ("ai", "uploads")


def today(now: datetime | None = None) -> str:
    return (now or utcnow()).astimezone(UTC).strftime("%Y-%m-%d")


async def consume(db: Database, user_id: str, kind: str, limit: int, *, date: str | None = None) -> bool:
    """Spend one unit of ``kind`` for today if fewer than ``limit`` are spent; True when spent."""
    return await DailyUsage(db).take(user_id, date or today(), kind, limit)


async def refund(db: Database, user_id: str, kind: str, *, date: str | None = None) -> bool:
    """Give back one unit spent today (the work it paid for did not happen)."""
    return await DailyUsage(db).give_back(user_id, date or today(), kind)


async def used(db: Database, user_id: str, kind: str, *, date: str | None = None) -> int:
    return await DailyUsage(db).used(user_id, date or today(), kind)


def daily_limit(limits: PlanLimits, kind: str) -> int:
    if kind == "ai":
        return limits.ai_per_day
    if kind == "uploads":
        return limits.uploads_per_day
    raise ValueError(f"unknown usage kind {kind!r}")


async def plan_of(db: Database, user_id: str) -> str:
    return await UserRepository(db).plan_of(user_id)


# -- metered in Redis -------------------------------------------------------------------------

SEED_ATTEMPTS = 3  # a counter can vanish again between its seed and the retry only if Redis restarts


async def _seeded(db: Database, quota: QuotaCounters, counter: Counter) -> None:
    used, seq = await DailyUsage(db).snapshot(counter.user_id, counter.date, counter.kind)
    await quota.seed(counter, used, seq)


async def take_metered(
    db: Database, quota: QuotaCounters, user_id: str, kind: str, limit: int, *, date: str | None = None
) -> bool:
    """``consume`` on the Redis counter: one script call; the database is read only to seed a
    counter Redis does not hold (the day's first unit, or after Redis lost its data)."""
    counter = Counter(user_id, date or today(), kind)
    for _ in range(SEED_ATTEMPTS):
        taken = await quota.take(counter, limit)
        if taken is not None:
            return taken
        await _seeded(db, quota, counter)
    raise RuntimeError(f"the quota counter {counter.member} keeps vanishing")


async def refund_metered(
    db: Database, quota: QuotaCounters, user_id: str, kind: str, *, date: str | None = None
) -> bool:
    counter = Counter(user_id, date or today(), kind)
    for _ in range(SEED_ATTEMPTS):
        given = await quota.give(counter)
        if given is not None:
            return given
        await _seeded(db, quota, counter)
    raise RuntimeError(f"the quota counter {counter.member} keeps vanishing")


async def used_metered(db: Database, quota: QuotaCounters, user_id: str, kind: str, *, date: str | None = None) -> int:
    """Units spent: Redis' counter, or the database's copy when Redis does not hold it."""
    counter = Counter(user_id, date or today(), kind)
    current = await quota.read(counter)
    return current[0] if current is not None else await used(db, user_id, kind, date=counter.date)


PERSIST_BATCH = 500  # counters per database request


async def persist(db: Database, quota: QuotaCounters, counters: Iterable[Counter]) -> int:
    """Copy counters from Redis to the database (absolute value, newer ``seq`` only); returns how
    many documents changed. Safe to run anywhere, any number of times, concurrently. Each batch of
    counters is one Redis read, one database request and one Redis write."""
    usage, written, todo = DailyUsage(db), 0, list(counters)
    for start in range(0, len(todo), PERSIST_BATCH):
        batch = todo[start : start + PERSIST_BATCH]
        currents = list(zip(batch, await quota.read_many(batch), strict=True))
        # A counter gone from Redis (expired or lost) has only the database's copy: nothing to write.
        written += await usage.persist_many(
            [(c.user_id, c.date, c.kind, *current) for c, current in currents if current is not None]
        )
        await quota.persisted_many([(c, current[1] if current else 0) for c, current in currents])
    return written


async def persist_pending(db: Database, quota: QuotaCounters) -> int:
    """Every counter changed since its last persist, on any replica (the worker's backstop)."""
    return await persist(db, quota, await quota.pending())


class UsageWriteBehind:
    """One per gateway: persists the counters this process changed, off the requests' path. The
    counters changed within ``coalesce`` seconds of the first change are written together (one
    database request, ``persist``), so a burst of answers costs one write rather than one each
    while the answers are being generated; changes that arrive while a write is under way go into
    the next one. Whatever is left at shutdown is written then; whatever a crash leaves, the
    worker's ``usage_persist`` job writes from Redis' pending set."""

    RETRY_AFTER = 1.0
    COALESCE = 1.0  # seconds: the same bound as Redis' own AOF (fsync every second)

    def __init__(self, db: Database, quota: QuotaCounters, *, coalesce: float = COALESCE) -> None:
        self.db = db
        self.quota = quota
        self.coalesce = coalesce
        self.waiting: set[Counter] = set()
        self.wake = asyncio.Event()
        self.stop = Stop()
        self.task: asyncio.Task[None] | None = None

    def changed(self, user_id: str, kind: str, date: str | None = None) -> None:
        self.waiting.add(Counter(user_id, date or today(), kind))
        self.wake.set()

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="usage-write-behind")

    async def _run(self) -> None:
        # Ends on ``self.stop``, not on a cancel alone: a cancel may be lost (``loops``), and this
        # loop outlives database and Redis errors.
        while not self.stop.requested:
            await self.wake.wait()
            if not await self.stop.sleep(self.coalesce):  # a batching window, not a wait for anything
                return
            self.wake.clear()
            if not await self.flush():
                if not await self.stop.sleep(self.RETRY_AFTER):  # database or Redis unavailable
                    return
                self.wake.set()

    async def flush(self) -> bool:
        batch, self.waiting = self.waiting, set()
        try:
            await persist(self.db, self.quota, batch)
        except BaseException as exc:
            self.waiting |= batch  # written next time: at ``close`` when this is the loop's cancel
            if not isinstance(exc, Exception):
                raise
            log.warning("usage_persist_failed", error=str(exc), counters=len(batch))
            return False
        return True

    async def close(self) -> None:
        if self.task is not None:
            self.wake.set()
            await self.stop.stop(self.task)
        if self.waiting:
            await self.flush()


@dataclass(frozen=True, slots=True)
class UsageReport:
    date: str
    plan: str
    ai: int
    uploads: int
    storage_bytes: int
    boards: int
    notebooks: int
    limits: PlanLimits


async def report(
    db: Database, settings: Settings, user_id: str, quota: QuotaCounters | None = None
) -> UsageReport:
    from . import quotas, storage  # storage and quotas import nothing from here

    plan = settings.plan(await plan_of(db, user_id))
    date = today()
    if quota is None:
        ai = await used(db, user_id, "ai", date=date)
    else:
        ai = await used_metered(db, quota, user_id, "ai", date=date)
    return UsageReport(
        date=date,
        plan=plan.id,
        ai=ai,
        uploads=await used(db, user_id, "uploads", date=date),
        storage_bytes=await storage.used_bytes(db, user_id),
        boards=await quotas.held(db, user_id, "boards"),
        notebooks=await quotas.held(db, user_id, "notebooks"),
        limits=plan.limits,
    )
