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
from aiohttp.typedefs import Handler
from pymongo.errors import PyMongoError

from ..appkeys import DB, REDIS, SETTINGS
from ..cache.client import REDIS_ERRORS
from ..cache.quota import QuotaCounters
from ..cache.redis_keys import Keys
from ..domain import usage
from ..domain.usage import UsageWriteBehind
from ..errors import AppError
from ..web.jsonio import loads
from .keys import ACCESS_CLAIMS, AI_UNIT_TAKEN, QUOTA, REQUEST_CHECK, USAGE_WRITER
from .security import AI_RULE, decided, enforce, public_user_document

log = structlog.get_logger("collabry.usage")

async def metering_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the quota counters, and the task that persists them behind the requests."""
    quota = app[QUOTA] = QuotaCounters(app[REDIS], Keys(app[SETTINGS].redis_prefix))
    writer = app[USAGE_WRITER] = UsageWriteBehind(app[DB], quota)
    writer.start()
    yield
    await writer.close()  # what this process changed and has not written yet


def _quota_exceeded() -> AppError:
    return AppError(status=429, code="quota_exceeded", message="today's AI requests for your plan are used up")


async def meter_ai(request: web.Request, user_id: str) -> None:
    """The per-user AI rate rule (429 ``rate_limited``, fails open) and one unit of today's AI
    quota (429 ``quota_exceeded``, 503 when it cannot be checked). Usually both were spent by the
    request's one Redis script (``security.METERED_AI_ROUTES``) and this only reads the answer;
    otherwise (the user's cached copy was stale, Redis was unreachable for the middleware) each is
    asked here, as before."""
    checked = request.get(REQUEST_CHECK)
    if checked is None or checked.ai_decision is None:
        await enforce(request, AI_RULE, user_id, request.app[SETTINGS].ai_limit, fail_open=True)
        await spend_ai(request, user_id)
        return
    decided(AI_RULE, user_id, checked.ai_decision)
    if checked.ai_unit == -1:  # the day's first unit on this Redis: seeded from the database, then taken
        await spend_ai(request, user_id)
        return
    if checked.ai_unit != 1:
        raise _quota_exceeded()
    request[AI_UNIT_TAKEN] = True
    request.app[USAGE_WRITER].changed(user_id, "ai")


@web.middleware
async def unused_ai_unit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A unit the request's script spent is given back when the route did not take it: the body
    was invalid or the replica was draining (the answers a route gives before ``meter_ai``; a
    revoked session spends nothing). Inside ``global_limit_middleware``, which asked."""
    try:
        return await handler(request)
    finally:
        checked = request.get(REQUEST_CHECK)
        if checked is not None and checked.ai_unit == 1 and not request.get(AI_UNIT_TAKEN):
            await refund_ai(request, request[ACCESS_CLAIMS].user_id)


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
        raise _quota_exceeded()
    request.app[USAGE_WRITER].changed(user_id, "ai")


async def refund_ai(request: web.Request, user_id: str) -> None:
    """Give the unit back: the work it paid for did not happen."""
    try:
        if await usage.refund_metered(request.app[DB], request.app[QUOTA], user_id, "ai"):
            request.app[USAGE_WRITER].changed(user_id, "ai")
    except (PyMongoError, *REDIS_ERRORS) as exc:  # the original error is what the client needs to see
        log.warning("quota_refund_failed", error=str(exc))
