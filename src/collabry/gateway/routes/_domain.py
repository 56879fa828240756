"""What the study-domain route modules share: a second path per handler, the caller as an
``Actor``, and the Socket.IO emitter the notification service pushes through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from ...appkeys import DB, SETTINGS
from ...db.client import Database
from ...domain import policy
from ...domain.notifications import UserEmitter
from ...realtime.emitter import Emitter
from ...web.api import Handler, Routes
from ..security import current_user_id

log = structlog.get_logger("collabry.domain_routes")


class DomainRoutes(Routes):
    """``Routes`` that can serve one handler at a second path."""

    def alias(self, method: str, path: str, fn: Handler, **kw: Any) -> None:
        """Serve ``fn`` at a second path too (``/api/boards`` and ``/api/boards/``)."""

        async def alias_handler(request: web.Request, **kwargs: Any) -> web.StreamResponse:
            return await fn(request, **kwargs)

        alias_handler.__name__ = f"{fn.__name__}_slash"
        self.route(method, path, **kw)(alias_handler)


def db_of(request: web.Request) -> Database:
    return request.app[DB]


async def actor_of(request: web.Request) -> policy.Actor:
    return await policy.actor(request.app[DB], current_user_id(request))


def json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def no_content() -> web.Response:
    return web.Response(status=204)


# -- the emitter --------------------------------------------------------------------------------

EMITTER = web.AppKey("collabry.domain_emitter", Emitter)
_EMITTER_INSTALLED = web.AppKey("collabry.domain_emitter_installed", bool)


async def emitter_ctx(app: web.Application) -> AsyncIterator[None]:
    emitter = Emitter(app[SETTINGS])
    app[EMITTER] = emitter
    yield
    try:
        await emitter.close()
    except Exception as exc:  # closing a connection that never opened
        log.debug("emitter_close_failed", error=str(exc))


def install_emitter(app: web.Application) -> None:
    if not app.get(_EMITTER_INSTALLED):
        app[_EMITTER_INSTALLED] = True
        app.cleanup_ctx.append(emitter_ctx)


def emitter_of(request: web.Request) -> UserEmitter | None:
    return request.app.get(EMITTER)
