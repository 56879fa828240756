"""cleanup_ctx generators for the resources every process shares: the database and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from ..appkeys import DB, LIMITER, MONGO, READY_CHECKS, REDIS, SETTINGS
from ..cache.client import create_redis
from ..cache.ratelimit import RateLimiter
from ..db.client import create_client, ping
from ..db.migrations import migrate
from ..loops import Stop, retry_forever

log = structlog.get_logger("collabry.resources")


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = create_client(settings)
    db = client[settings.database_name]
    app[MONGO] = client
    app[DB] = db
    app.setdefault(READY_CHECKS, {})["database"] = lambda: ping(db, settings.ready_timeout)
    # Indexes are created before the process takes requests (a request racing an index build on
    # its collection can be aborted by a deadlock, and a unique index must exist before the first
    # write it guards). If the database is not up yet the process still starts, reports it in
    # /ready, and the migration completes in the background as soon as the database answers.
    stop = Stop()
    try:
        await migrate(db)
        task: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task.set_result(None)
    except Exception as exc:
        log.warning("migrate_deferred", error=str(exc))
        task = asyncio.create_task(retry_forever("migrate", lambda: migrate(db), stop))

    async def migrated() -> None:
        # Not ready (so out of a rollout's rotation) until every index, unique ones included, exists.
        if not task.done():
            raise RuntimeError("migrating")

    app[READY_CHECKS]["migrations"] = migrated
    yield
    await stop.stop(task)
    await client.close()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    redis = create_redis(settings)
    app[REDIS] = redis
    app[LIMITER] = RateLimiter(redis, settings)

    async def check() -> None:
        await redis.ping()

    app.setdefault(READY_CHECKS, {})["redis"] = check
    yield
    await redis.aclose()
