"""Persist the AI quota's Redis counters that no gateway has written to the database yet.

Each gateway writes the counters it changed right after the request (``UsageWriteBehind``); a
gateway that crashed, or lost the database for a while, leaves them in Redis' pending set, which
this job empties. Writes are idempotent (absolute value, newer ``seq`` only: ``DailyUsage.persist``),
so running it from several hosts at once, or alongside the gateways, is harmless.
"""

from __future__ import annotations

from datetime import timedelta

from ...cache.quota import QuotaCounters
from ...cache.redis_keys import Keys
from ...domain.usage import persist_pending
from ..job import CatchUp, Job, JobContext


async def persist_usage(ctx: JobContext) -> None:
    written = await persist_pending(ctx.db, QuotaCounters(ctx.redis, Keys(ctx.settings.redis_prefix)))
    if written:
        ctx.done("persisted", written)


JOB = Job(
    name="usage_persist",
    body=persist_usage,
    schedule="* * * * *",
    catch_up=CatchUp.LATEST,
    lease=timedelta(minutes=2),
    timeout=timedelta(minutes=2),
    description="write the AI quota counters left in Redis to the database",
)
