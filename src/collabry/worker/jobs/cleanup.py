"""Daily cleanup: everything that expires (no TTL indexes: expiry is the worker's job, the same on
every MongoDB-wire server).

Each step is independent and idempotent (deletes by age); a failing step does not stop the others,
and the slot is recorded as failed so it is retried. Catch-up: once (a run after downtime deletes
everything that has aged out meanwhile in one go).

Ages are measured against the real wall clock, not the worker's scheduling clock (``--now``):
they compare with timestamps other processes wrote with the real clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from ...auth.refresh import RefreshTokenStore
from ...cache.redis_keys import Keys
from ...cache.streams import StreamReader
from ...db.client import utcnow
from ...db.notifications import Notifications
from ...db.usage import DailyUsage
from ..job import CatchUp, Job, JobContext
from ..ledger import JobLedger
from . import recycle
from .stale_streams import stream_ids


async def refresh_tokens(ctx: JobContext) -> None:
    ctx.done("refresh_tokens", await RefreshTokenStore(ctx.db, ctx.settings.refresh_token_ttl).purge_expired())


async def stream_buffers(ctx: JobContext) -> None:
    """Finished streams expire by their own TTL; this catches any left without one (a PERSIST,
    a restore from a dump) so no buffer outlives its retention."""
    reader = StreamReader.for_settings(ctx.redis, ctx.settings)
    keys = Keys(ctx.settings.redis_prefix)
    retention = ctx.settings.stream_retention
    for stream_id in await stream_ids(ctx):
        meta = await reader.meta(stream_id)
        if meta is not None and not meta.ended:
            continue  # running streams are the stale_streams job's business
        names = [keys.stream(stream_id), keys.stream_meta(stream_id), keys.stream_cancel(stream_id)]
        fixed = 0
        for name in names:
            if await ctx.redis.ttl(name) == -1:  # exists without an expiry
                await ctx.redis.expire(name, retention)
                fixed = 1
        ctx.done("stream_buffers", fixed)


async def notifications(ctx: JobContext) -> None:
    cutoff = utcnow() - timedelta(days=ctx.settings.notification_retention_days)
    ctx.done("notifications", await Notifications(ctx.db).forget_before(cutoff))


async def usage_counters(ctx: JobContext) -> None:
    # `usage` documents carry their UTC day as YYYY-MM-DD, which sorts like the date.
    cutoff = (utcnow() - timedelta(days=ctx.settings.usage_retention_days)).strftime("%Y-%m-%d")
    ctx.done("usage", await DailyUsage(ctx.db).forget_before(cutoff))


async def job_runs(ctx: JobContext) -> None:
    # The ledger is written with the scheduling clock, so its age is measured with that clock.
    cutoff = ctx.now() - timedelta(days=ctx.settings.job_run_retention_days)
    ctx.done("job_runs", await JobLedger(ctx.db).purge(cutoff))


STEPS: tuple[Callable[[JobContext], Awaitable[None]], ...] = (
    refresh_tokens,
    stream_buffers,
    notifications,
    recycle.purge_recycle_bin,
    usage_counters,
    job_runs,
)


async def cleanup(ctx: JobContext) -> None:
    failed = []
    for step in STEPS:
        try:
            await step(ctx)
        except Exception as exc:
            ctx.log.error("cleanup_step_failed", step=step.__name__, error=f"{type(exc).__name__}: {exc}",
                          exc_info=True)
            failed.append(step.__name__)
    if failed:
        raise RuntimeError(f"cleanup steps failed: {', '.join(failed)}")


JOB = Job(
    name="cleanup",
    body=cleanup,
    schedule="17 3 * * *",
    catch_up=CatchUp.LATEST,
    lease=timedelta(minutes=10),
    timeout=timedelta(minutes=30),
    retry_after=timedelta(minutes=10),
    description="expired tokens, old notifications, usage and runs, the recycle bin, stream buffers",
)
