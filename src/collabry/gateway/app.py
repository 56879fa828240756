"""The gateway's app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import ModuleType

from aiohttp import web

from ..appkeys import DB, PROCESS, READY_CHECKS, SETTINGS
from ..auth.passwords import Passwords
from ..auth.refresh import RefreshTokenStore
from ..auth.tokens import AccessTokens
from ..config import Settings
from ..db.users import UserRepository
from ..lifecycle import install_drain
from ..web.api import AUTHENTICATORS
from ..web.errors import error_middleware
from ..web.middleware import observe_middleware, security_headers
from ..web.probes import add_probes
from ..web.resources import database_ctx, redis_ctx
from . import realtime
from .keys import ACCESS_TOKENS, PASSWORDS, REFRESH_TOKENS, USERS
from .routes import (
    account,
    ai,
    ai_stream,
    auth,
    billing,
    boards,
    email_verification,
    meta,
    notebooks,
    notifications,
    password,
    planner,
    usage,
)
from .security import authenticate_user, global_limit_middleware

# Areas served by the gateway; each module exposes `routes` and may expose `setup(app)`.
AREAS: list[ModuleType] = [
    meta, auth, password, email_verification, account, boards, notebooks, billing, usage, notifications, planner,
    ai, ai_stream, realtime,
]


async def auth_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    db = app[DB]
    app[USERS] = UserRepository(db)
    app[REFRESH_TOKENS] = RefreshTokenStore(db, settings.refresh_token_ttl)
    yield


async def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        # Uploads are the largest bodies; JSON bodies are checked against their own, smaller limit.
        client_max_size=settings.max_upload_bytes + 64 * 1024,
        middlewares=[observe_middleware, error_middleware, global_limit_middleware],
    )
    app[SETTINGS] = settings
    app[PROCESS] = "gateway"
    app.on_response_prepare.append(security_headers)
    app[READY_CHECKS] = {}
    install_drain(app)
    app[ACCESS_TOKENS] = AccessTokens(settings)
    app[PASSWORDS] = Passwords(settings)
    app[AUTHENTICATORS] = {"user": authenticate_user}
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(auth_ctx)
    add_probes(app)
    for area in AREAS:
        setup = getattr(area, "setup", None)
        if setup is not None:
            setup(app)
        area.routes.add_to(app)
    return app
