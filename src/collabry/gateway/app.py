"""The gateway's composition root (`collabry gateway`): public REST, SSE and Socket.IO.

``create_app`` lists every resource as a ``cleanup_ctx`` in start-up order (each one's cleanup
runs in reverse): the database and Redis clients, the auth repositories, the engine client, the
Socket.IO emitter, the mail sender, the SSE relays and the real-time hub. Route modules only add
routes; their handlers reach the resources through ``gateway.keys``.
"""

from __future__ import annotations

from aiohttp import web

from ..appkeys import PROCESS, READY_CHECKS, SETTINGS
from ..auth.passwords import Passwords
from ..auth.tokens import AccessTokens
from ..config import Settings
from ..lifecycle import install_drain
from ..web.api import AUTHENTICATORS, Authenticator, Routes
from ..web.errors import error_middleware
from ..web.middleware import observe_middleware, security_headers
from ..web.probes import add_probes
from ..web.resources import database_ctx, redis_ctx
from . import mailer, realtime
from .keys import ACCESS_TOKENS, LOGOUT_ALL_HOOKS, PASSWORDS, SESSION_REVOKED_HOOKS
from .metering import metering_ctx, unused_ai_unit_middleware
from .relay import relays_ctx
from .resources import auth_ctx, emitter_ctx, engine_client_ctx
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

ROUTES: list[Routes] = [
    area.routes
    for area in (
        meta, auth, password, email_verification, account, boards, notebooks, billing, usage, notifications,
        planner, ai, ai_stream,
    )
]  # fmt: skip


async def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        # Uploads are the largest bodies; JSON bodies are checked against their own, smaller limit.
        client_max_size=settings.max_upload_bytes + 64 * 1024,
        middlewares=[observe_middleware, error_middleware, global_limit_middleware, unused_ai_unit_middleware],
    )
    app[SETTINGS] = settings
    app[PROCESS] = "gateway"
    app.on_response_prepare.append(security_headers)
    app[READY_CHECKS] = {}
    install_drain(app)
    app[ACCESS_TOKENS] = AccessTokens(settings)
    app[PASSWORDS] = Passwords(settings)
    authenticators: dict[str, Authenticator] = {"user": authenticate_user}
    app[AUTHENTICATORS] = authenticators
    app[LOGOUT_ALL_HOOKS] = []
    app[SESSION_REVOKED_HOOKS] = []
    app.cleanup_ctx.extend(
        [
            database_ctx,
            redis_ctx,
            metering_ctx,
            auth_ctx,
            engine_client_ctx,
            emitter_ctx,
            mailer.mail_ctx,
            relays_ctx,
            realtime.realtime_ctx,
        ]
    )
    add_probes(app)
    for routes in ROUTES:
        routes.add_to(app)
    realtime.add_endpoint(app)
    return app
