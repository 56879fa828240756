"""/health (no I/O), /ready (dependencies, with a timeout; 503 once draining) and /metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..appkeys import DRAIN, READY_CHECKS, SETTINGS
from ..metrics import DEPENDENCY_UP


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    if request.app[DRAIN].draining.is_set():
        return web.json_response({"status": "draining"}, status=503)
    timeout = request.app[SETTINGS].ready_timeout
    checks = request.app[READY_CHECKS]

    async def run(name: str) -> str:
        try:
            await asyncio.wait_for(checks[name](), timeout)
        except Exception as exc:  # any failure is reported, never raised
            DEPENDENCY_UP.labels(name).set(0)
            return f"failed: {type(exc).__name__}"
        DEPENDENCY_UP.labels(name).set(1)
        return "ok"

    names = list(checks)
    results = dict(zip(names, await asyncio.gather(*(run(n) for n in names)), strict=True))
    ok = all(v == "ok" for v in results.values())
    return web.json_response({"status": "ready" if ok else "unavailable", "checks": results}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_probes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
