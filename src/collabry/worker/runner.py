"""Runs due job slots: plan the slots, claim each in the ledger, run the job body, record the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from redis.asyncio import Redis

from ..config import Settings
from ..db.client import Database
from ..loops import Stop
from .job import CatchUp, Clock, CrashHook, JobContext
from .ledger import DONE, MANUAL, Claim, JobLedger
from .registry import Scheduled
from .schedule import slot_name, slots_between

if TYPE_CHECKING:
    from ..engine_client import EngineClient
    from ..realtime.emitter import Emitter

log = structlog.get_logger("collabry.worker")

MAX_CATCH_UP_SLOTS = 1440


@dataclass
class SlotOutcome:
    job: str
    slot: str
    outcome: str  # done | failed | skipped
    attempt: int = 0
    duration: float = 0.0
    items: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunReport:
    started: datetime
    outcomes: list[SlotOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the worker itself could not work (database down)
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and all(o.outcome != "failed" for o in self.outcomes)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)


class Worker:
    def __init__(
        self, settings: Settings, db: Database, redis: Redis, jobs: list[Scheduled], *,
        clock: Clock | None = None, crash_hook: CrashHook | None = None, ledger: JobLedger | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.redis = redis
        self.jobs = jobs
        self.clock = clock or Clock()
        self.crash_hook = crash_hook or CrashHook(None)
        self.ledger = ledger or JobLedger(db)
        self._emitter: Emitter | None = None
        self._engine: EngineClient | None = None

    def emitter(self) -> Emitter:
        if self._emitter is None:
            from ..realtime.emitter import Emitter

            self._emitter = Emitter(self.settings)
        return self._emitter

    def engine(self) -> EngineClient:
        if self._engine is None:
            from ..engine_client import EngineClient

            self._engine = EngineClient.open(self.settings)
        return self._engine

    async def close(self) -> None:
        for resource in (self._emitter, self._engine):
            if resource is not None:
                with contextlib.suppress(Exception):
                    await resource.close()
        self._emitter = self._engine = None

    async def due_slots(self, item: Scheduled, now: datetime) -> list[datetime]:
        """The slots of one job this run should try, oldest first."""
        if item.schedule is None:
            return []
        latest = item.schedule.latest(now)
        if latest is None:
            return []
        job = item.job
        if job.catch_up is CatchUp.LATEST:
            return [latest]
        window_start = now - job.catch_up_window
        known = await self.ledger.known_slots(item.ledger_name, window_start)
        last = max(known) if known else await self.ledger.last_slot(item.ledger_name)
        if last is None:
            return [latest]  # a job that never ran starts now instead of replaying its whole window
        missed = slots_between(item.schedule, max(last, window_start), now, limit=MAX_CATCH_UP_SLOTS)
        retry = [
            slot for slot, doc in known.items()
            if doc["status"] != DONE and doc["lease_until"] <= now and doc["attempt"] < job.max_attempts
        ]
        return sorted(set(missed) | set(retry))

    @staticmethod
    def previous_slot(item: Scheduled, slot_at: datetime) -> datetime:
        previous = item.schedule.latest(slot_at - timedelta(microseconds=1)) if item.schedule else None
        return previous if previous is not None else slot_at - timedelta(minutes=1)

    async def run_due(self) -> RunReport:
        started = time.monotonic()
        report = RunReport(self.clock.now())
        results = await asyncio.gather(*(self._run_job_due(item, report) for item in self.jobs))
        for outcomes in results:
            report.outcomes.extend(outcomes)
        report.duration = time.monotonic() - started
        log.info(
            "worker_run",
            now=slot_name(report.started),
            ran=report.count("done") + report.count("failed"),
            failed=report.count("failed"),
            skipped=report.count("skipped"),
            errors=report.errors or None,
            duration_ms=round(report.duration * 1000, 1),
        )
        return report

    async def _run_job_due(self, item: Scheduled, report: RunReport) -> list[SlotOutcome]:
        outcomes: list[SlotOutcome] = []
        try:
            for slot_at in await self.due_slots(item, self.clock.now()):
                claim = await self._claim(item, slot_at)
                if claim is None:
                    log.debug("job_slot_skipped", job=item.name, slot=slot_name(slot_at))
                    outcomes.append(SlotOutcome(item.name, slot_name(slot_at), "skipped"))
                    continue
                outcomes.append(await self.execute(item, claim))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The ledger itself failed (database unreachable): nothing was claimed, so nothing is lost.
            message = f"{item.name}: {type(exc).__name__}: {exc}"
            log.error("job_ledger_error", job=item.name, error=f"{type(exc).__name__}: {exc}")
            report.errors.append(message)
        return outcomes

    async def _claim(self, item: Scheduled, slot_at: datetime) -> Claim | None:
        """Claim a slot; a stop that lands while the claim is in flight still leaves it claimable at once."""
        pending = asyncio.ensure_future(self.ledger.claim(
            item.ledger_name, slot_at, now=self.clock.now(), lease=item.job.lease, max_attempts=item.job.max_attempts,
        ))
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # stopping: a ledger error now changes nothing
                claim = await pending
                if claim is not None:
                    now = self.clock.now()
                    await self.ledger.finish(claim, now=now, started=now, items={}, error="interrupted",
                                             retry_at=now, counts_as_failure=False)
            raise

    async def run_manual(self, item: Scheduled) -> SlotOutcome:
        """`collabry worker run JOB`: a fresh ledger entry, whatever the schedule says."""
        now = self.clock.now()
        slot = f"manual-{slot_name(now)}-{self.ledger.owner.rsplit(':', 1)[-1]}"
        claim = await self.ledger.claim(
            item.ledger_name, now, now=now, lease=item.job.lease, max_attempts=1, trigger=MANUAL, slot=slot
        )
        if claim is None:  # the random suffix makes this unreachable short of an id collision
            return SlotOutcome(item.name, slot, "skipped")
        return await self.execute(item, claim)

    async def execute(self, item: Scheduled, claim: Claim) -> SlotOutcome:
        job = item.job
        bound = log.bind(job=item.name, slot=claim.slot, attempt=claim.attempt)
        ctx = JobContext(
            job=job, slot=claim.slot_at, since=self.previous_slot(item, claim.slot_at), settings=self.settings,
            db=self.db, redis=self.redis, clock=self.clock, emitter_factory=self.emitter,
            engine_factory=self.engine, crash_hook=self.crash_hook, log=bound,
        )
        started_at = self.clock.now()
        started = time.monotonic()
        renewing = Stop()
        renewer = asyncio.create_task(self._keep_lease(claim, job.lease, renewing), name=f"lease:{claim.run_id}")
        error: str | None = None
        interrupted = False
        deadline = asyncio.timeout(job.timeout.total_seconds())
        try:
            async with deadline:
                await job.body(ctx)
        except TimeoutError as exc:
            if deadline.expired():
                error = f"timed out after {job.timeout.total_seconds():.0f} s"
            else:  # a client timeout inside the job (aiohttp's is a TimeoutError too)
                error = f"{type(exc).__name__}: {exc}"
                bound.error("job_exception", exc_info=True)
        except asyncio.CancelledError:
            # SIGTERM: record the attempt so the next run can take the slot over at once.
            error, interrupted = "interrupted", True
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            bound.error("job_exception", exc_info=True)
        finally:
            await renewing.stop(renewer)
        duration = time.monotonic() - started
        finished_at = started_at + timedelta(seconds=duration)
        recorded = await self.ledger.finish(
            claim, now=finished_at, started=started_at, items=dict(ctx.items), error=error,
            retry_at=started_at if interrupted else finished_at + job.retry_after, counts_as_failure=not interrupted,
        )
        fields: dict[str, Any] = {
            "outcome": "failed" if error else "done",
            "duration_ms": round(duration * 1000, 1),
            "items": dict(ctx.items),
        }
        if claim.previous:
            fields["took_over"] = claim.previous
        if not recorded:
            fields["lease_lost"] = True  # another attempt took the slot over meanwhile; its record stands
        if error:
            bound.warning("job_run", error=error, **fields)
        else:
            bound.info("job_run", **fields)
        if interrupted:
            raise asyncio.CancelledError
        return SlotOutcome(item.name, claim.slot, fields["outcome"], claim.attempt, duration, dict(ctx.items), error)

    async def _keep_lease(self, claim: Claim, lease: timedelta, stop: Stop) -> None:
        # Ends on ``stop``, not on a cancel alone: a cancel may be lost (``loops``), and this loop
        # outlives database errors.
        interval = max(lease.total_seconds() / 3, 1.0)
        while await stop.sleep(interval):
            try:
                if not await self.ledger.renew(claim, now=self.clock.now(), lease=lease):
                    log.warning("job_lease_lost", job=claim.job, slot=claim.slot, attempt=claim.attempt)
                    return
            except Exception as exc:  # a database blip: keep working, try again next interval
                log.warning("job_lease_renew_failed", job=claim.job, error=str(exc))
