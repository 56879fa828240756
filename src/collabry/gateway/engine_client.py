"""The gateway's engine client: one per app, opened and closed by a ``cleanup_ctx``.

The client itself is ``collabry.engine_client`` (shared with the worker); routes reach it with
``engine_of(request)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from ..appkeys import SETTINGS
from ..engine_client import EngineClient

ENGINE = web.AppKey("collabry.engine_client", EngineClient)


async def engine_client_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: one pooled session to the engine for the life of the app."""
    client = app[ENGINE] = EngineClient.open(app[SETTINGS])
    # several engines: a health check keeps the failed ones at the end of every user's order
    checks = asyncio.create_task(client.run_health_checks()) if len(client.base_urls) > 1 else None
    yield
    if checks is not None:
        checks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checks
    await client.close()


_INSTALLED = web.AppKey("collabry.engine_client_installed", bool)


def install_engine_client(app: web.Application) -> None:
    """Add ``engine_client_ctx`` to the app once, however many areas ask for it."""
    if not app.get(_INSTALLED):
        app[_INSTALLED] = True
        app.cleanup_ctx.append(engine_client_ctx)


def engine_of(request: web.Request) -> EngineClient:
    return request.app[ENGINE]
