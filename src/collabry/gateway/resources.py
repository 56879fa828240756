"""The gateway's resources, each a ``cleanup_ctx`` that ``create_app`` lists in start-up order,
and the accessors route handlers reach them with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from ..appkeys import DB, REDIS, SETTINGS
from ..auth.refresh import RefreshTokenStore
from ..cache import users as user_cache
from ..cache.users import UserCache
from ..db.users import UserRepository
from ..domain.notifications import UserEmitter
from ..engine_client import EngineClient
from ..loops import Stop
from ..realtime.emitter import Emitter
from .keys import ACCESS_TOKENS, EMITTER, ENGINE, REFRESH_TOKENS, USER_CACHE, USERS, VERIFIED_TOKENS
from .security import VerifiedTokens

log = structlog.get_logger("collabry.gateway")


async def auth_ctx(app: web.Application) -> AsyncIterator[None]:
    """The user and refresh-token repositories (on the database client), the user cache (Redis)."""
    app[USERS] = UserRepository(app[DB])
    app[REFRESH_TOKENS] = RefreshTokenStore(app[DB], app[SETTINGS].refresh_token_ttl)
    app[VERIFIED_TOKENS] = VerifiedTokens(app[ACCESS_TOKENS])
    with user_cache.registered(UserCache(app[REDIS], app[SETTINGS])) as cache:
        app[USER_CACHE] = cache
        yield


async def engine_client_ctx(app: web.Application) -> AsyncIterator[None]:
    """One pooled session to the engines for the life of the app (``collabry.engine_client``)."""
    client = app[ENGINE] = EngineClient.open(app[SETTINGS])
    # several engines: a health check keeps the failed ones at the end of every user's order
    stop = Stop()
    checks = asyncio.create_task(client.run_health_checks(stop)) if len(client.base_urls) > 1 else None
    yield
    if checks is not None:
        await stop.stop(checks)
    await client.close()


async def emitter_ctx(app: web.Application) -> AsyncIterator[None]:
    """The Socket.IO emitter domain notifications are pushed through (to every replica)."""
    emitter = Emitter(app[SETTINGS])
    app[EMITTER] = emitter
    yield
    try:
        await emitter.close()
    except Exception as exc:  # closing a connection that never opened
        log.debug("emitter_close_failed", error=str(exc))


def engine_of(request: web.Request) -> EngineClient:
    return request.app[ENGINE]


def emitter_of(request: web.Request) -> UserEmitter | None:
    return request.app.get(EMITTER)
