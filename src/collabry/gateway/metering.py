"""The AI quota's Redis counters and their write-behind to the database (``domain.usage``).

The limit a unit is checked against is the user's current plan's. The plan is read from the
database at most once per ``PLAN_TTL`` seconds per user and gateway process (``PlanLimitCache``),
so the check costs no database round trip on the way to an answer: a plan change (an upgrade, or
a downgrade at the end of a period) applies to AI requests within ``PLAN_TTL`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from pymongo.errors import PyMongoError

from ..appkeys import DB, REDIS, SETTINGS
from ..cache.client import REDIS_ERRORS
from ..cache.quota import QuotaCounters
from ..cache.redis_keys import Keys
from ..domain import usage
from ..domain.usage import UsageWriteBehind
from ..errors import AppError
from .keys import PLAN_LIMITS, QUOTA, USAGE_WRITER

log = structlog.get_logger("collabry.usage")

PLAN_TTL = 15.0  # seconds a user's plan limit is reused by one gateway process
PLAN_ENTRIES = 50_000  # bound on the cache; it starts afresh when full


class PlanLimitCache:
    """User -> (AI limit of their plan, when it was read), per process, for ``PLAN_TTL`` seconds."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[int, float]] = {}

    async def limit(self, request: web.Request, user_id: str) -> int:
        now = time.monotonic()
        found = self.entries.get(user_id)
        if found is not None and now - found[1] < PLAN_TTL:
            return found[0]
        limit = await usage.plan_limit(request.app[DB], request.app[SETTINGS], user_id, "ai")
        if len(self.entries) >= PLAN_ENTRIES:
            self.entries.clear()
        self.entries[user_id] = (limit, now)
        return limit


async def metering_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the quota counters, and the task that persists them behind the requests."""
    quota = app[QUOTA] = QuotaCounters(app[REDIS], Keys(app[SETTINGS].redis_prefix))
    app[PLAN_LIMITS] = PlanLimitCache()
    writer = app[USAGE_WRITER] = UsageWriteBehind(app[DB], quota)
    writer.start()
    yield
    await writer.close()  # what this process changed and has not written yet


async def spend_ai(request: web.Request, user_id: str) -> None:
    """One unit of today's AI quota for the user's plan, or 429 ``quota_exceeded`` (503 when it
    cannot be checked: the request is refused rather than answered unmetered). No database write:
    the unit is spent in Redis and persisted behind the request."""
    try:
        limit = await request.app[PLAN_LIMITS].limit(request, user_id)
        allowed = await usage.take_metered(request.app[DB], request.app[QUOTA], user_id, "ai", limit)
    except (PyMongoError, *REDIS_ERRORS) as exc:
        log.warning("quota_unavailable", error=str(exc))
        raise AppError(
            status=503, code="unavailable", message="the quota cannot be checked right now",
            headers={"Retry-After": "2"},
        ) from None
    if not allowed:
        raise AppError(status=429, code="quota_exceeded", message="today's AI requests for your plan are used up")
    request.app[USAGE_WRITER].changed(user_id, "ai")


async def refund_ai(request: web.Request, user_id: str) -> None:
    """Give the unit back: the work it paid for did not happen."""
    try:
        if await usage.refund_metered(request.app[DB], request.app[QUOTA], user_id, "ai"):
            request.app[USAGE_WRITER].changed(user_id, "ai")
    except (PyMongoError, *REDIS_ERRORS) as exc:  # the original error is what the client needs to see
        log.warning("quota_refund_failed", error=str(exc))
