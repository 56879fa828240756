"""Close AI answer streams whose engine stopped mid-way, so their readers get an ``error`` end event.

A gateway closes a stale stream only while a client is reading it; this job closes the ones nobody
is reading, so a client that comes back later (or the saved history) sees a proper end instead of a
stream that stays ``running`` until it expires. ``StreamReader.close_stale`` decides and writes
atomically, so running it from several hosts at once is harmless.
"""

from __future__ import annotations

from datetime import timedelta

from ...cache.redis_keys import Keys
from ...cache.streams import StreamReader
from ..job import CatchUp, Job, JobContext


async def stream_ids(ctx: JobContext) -> list[str]:
    keys = Keys(ctx.settings.redis_prefix)
    head = keys.stream_meta("")
    found = []
    async for key in ctx.redis.scan_iter(match=keys.stream_meta("*"), count=500):
        text = key.decode() if isinstance(key, bytes) else key
        found.append(text[len(head):])
    return found


async def close_stale_streams(ctx: JobContext) -> None:
    reader = StreamReader.for_settings(ctx.redis, ctx.settings)
    for stream_id in await stream_ids(ctx):
        if await reader.close_stale(stream_id):
            ctx.log.info("stream_closed_stale", stream_id=stream_id)
            ctx.done("closed")


JOB = Job(
    name="stale_streams",
    body=close_stale_streams,
    schedule="* * * * *",
    catch_up=CatchUp.LATEST,
    lease=timedelta(minutes=2),
    timeout=timedelta(minutes=2),
    description="end answers whose engine stopped with an error event",
)
