"""The engine's app factory (`collabry engine`): the internal API behind the service token.

Start-up order: database and Redis clients (which report outages in /ready rather than failing),
then the embedder (loaded once; a missing model file is a configuration error, exit 78), the
index store, the LLM client, and the services built on them. On SIGTERM, /ready turns 503, new
requests drain, running answers and ingestions get the drain budget to finish, dirty indexes are
snapshotted, and clients close.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import structlog
from aiohttp import web

from ..appkeys import DB, PROCESS, READY_CHECKS, REDIS, SETTINGS
from ..config import ConfigError, Settings
from ..errors import AppError
from ..lifecycle import install_drain
from ..web.api import AUTHENTICATORS
from ..web.errors import error_middleware
from ..web.middleware import observe_middleware
from ..web.probes import add_probes
from ..web.resources import database_ctx, redis_ctx
from .chat import ChatService
from .embeddings import EmbedderError, create_embedder
from .index.state import IndexLog
from .index.store import IndexStore
from .ingest.pipeline import Ingestor
from .keys import BACKGROUND, CHAT, EMBEDDER, INGESTOR, LLM_CLIENT, RETRIEVER, STORE, TOOLS
from .llm.client import LLM
from .metrics import INDEX_MEMORY, INDEX_SNAPSHOT_AGE, INDEX_USERS
from .retrieval import Retriever
from .routes import routes
from .tasks.tools import ToolRunner

log = structlog.get_logger("collabry.engine")

SNAPSHOT_INTERVAL = 5.0


async def authenticate_service(request: web.Request) -> None:
    """Only holders of the service token (gateways, the worker) may call the internal API."""
    expected = request.app[SETTINGS].service_token
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise AppError(status=401, code="unauthorized", message="a valid service token is required")


async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=max(2, settings.threads), thread_name_prefix="engine")

    def run_blocking(fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        return loop.run_in_executor(executor, partial(fn, *args))

    try:
        embedder = await run_blocking(create_embedder, settings)
        if getattr(embedder, "dim", 0) == 0:
            await run_blocking(embedder.probe)  # the openai backend learns its dimension
    except EmbedderError as exc:
        executor.shutdown(wait=False)
        raise ConfigError("COLLABRY_EMBED_BACKEND", str(exc)) from None
    db = app[DB]
    index_log = IndexLog(db)
    store = IndexStore(
        index_log, settings.state_dir, model=embedder.model, dim=embedder.dim, memory_budget=settings.index_memory_bytes
    )
    llm = LLM(settings)
    retriever = Retriever(db, embedder, store, run_blocking)
    app[EMBEDDER] = embedder
    app[STORE] = store
    INDEX_SNAPSHOT_AGE.set_function(store.snapshot_age)
    app[LLM_CLIENT] = llm
    app[RETRIEVER] = retriever
    app[INGESTOR] = Ingestor(
        db,
        embedder,
        index_log,
        store,
        chunk_chars=settings.chunk_chars,
        chunk_overlap=settings.chunk_overlap,
        batch=settings.embed_batch,
        run_blocking=run_blocking,
    )
    app[CHAT] = ChatService(db, app[REDIS], settings, retriever, llm)
    app[TOOLS] = ToolRunner(db, llm, settings, store)
    app[BACKGROUND] = set()
    checks = app[READY_CHECKS]

    async def embedder_loaded() -> None:
        if app.get(EMBEDDER) is None:
            raise RuntimeError("embedder not loaded")

    checks["embedder"] = embedder_loaded
    checks["llm"] = llm.ping
    (settings.state_dir / "ingest").mkdir(parents=True, exist_ok=True)

    async def gauges() -> None:
        while True:
            INDEX_MEMORY.set(store.memory_bytes)
            INDEX_USERS.set(len(store._cache))
            await asyncio.sleep(5)

    flusher = asyncio.create_task(store.flush_every(SNAPSHOT_INTERVAL))
    gauge_task = asyncio.create_task(gauges())
    log.info("engine_ready", embedder=embedder.model, dim=embedder.dim, llm=settings.llm_base_url or "retrieval-only")
    yield
    budget = settings.drain_timeout
    await app[CHAT].shutdown(budget)
    background = app[BACKGROUND]
    if background:
        _, pending = await asyncio.wait(set(background), timeout=budget)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)
    for task in (flusher, gauge_task):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await store.flush()
    await llm.close()
    executor.shutdown(wait=False, cancel_futures=True)


async def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.max_json_bytes, middlewares=[observe_middleware, error_middleware])
    app[SETTINGS] = settings
    app[PROCESS] = "engine"
    app[READY_CHECKS] = {}
    install_drain(app)
    app[AUTHENTICATORS] = {"service": authenticate_service}
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(engine_ctx)
    add_probes(app)
    routes.add_to(app)
    return app
