"""The AI quota's Redis counters and their write-behind to the database (``domain.usage``).

The limit a unit is checked against is the user's current plan's. The plan comes from the cached
public user that the request's one Redis script already read (``security.public_user_document``),
so the check costs no database round trip on the way to an answer; every plan change (an upgrade,
a downgrade at the end of a period, an operator's payment confirmation) invalidates that copy
(``cache.users.user_changed``), so the next request sees the new plan.
"""

from __future__ import annotations

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
from ..web.jsonio import loads
from .keys import QUOTA, USAGE_WRITER
from .security import public_user_document

log = structlog.get_logger("collabry.usage")

async def metering_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the quota counters, and the task that persists them behind the requests."""
    quota = app[QUOTA] = QuotaCounters(app[REDIS], Keys(app[SETTINGS].redis_prefix))
    writer = app[USAGE_WRITER] = UsageWriteBehind(app[DB], quota)
    writer.start()
    yield
    await writer.close()  # what this process changed and has not written yet


async def spend_ai(request: web.Request, user_id: str) -> None:
    """One unit of today's AI quota for the user's plan, or 429 ``quota_exceeded`` (503 when it
    cannot be checked: the request is refused rather than answered unmetered). No database write:
    the unit is spent in Redis and persisted behind the request."""
    try:
        plan = loads(await public_user_document(request, user_id)).get("plan", "free")
        limit = usage.daily_limit(request.app[SETTINGS].plan(str(plan)).limits, "ai")
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
