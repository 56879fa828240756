"""The gateway's engine client: one per app, opened and closed by a ``cleanup_ctx``.

The client itself is ``collabry.engine_client`` (shared with the worker); routes reach it with
``engine_of(request)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..appkeys import SETTINGS
from ..engine_client import EngineClient

ENGINE = web.AppKey("collabry.engine_client", EngineClient)


async def engine_client_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: one pooled session to the engine for the life of the app."""
    app[ENGINE] = EngineClient.open(app[SETTINGS])
    yield
    await app[ENGINE].close()


_INSTALLED = web.AppKey("collabry.engine_client_installed", bool)


def install_engine_client(app: web.Application) -> None:
    """Add ``engine_client_ctx`` to the app once, however many areas ask for it."""
    if not app.get(_INSTALLED):
        app[_INSTALLED] = True
        app.cleanup_ctx.append(engine_client_ctx)


def engine_of(request: web.Request) -> EngineClient:
    return request.app[ENGINE]
