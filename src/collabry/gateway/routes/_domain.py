"""What the study-domain route modules share: a second path per handler and the caller as an
``Actor``."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from ...appkeys import DB
from ...db.client import Database
from ...domain import policy
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
