"""The engine's composition root (`collabry engine`): the internal API behind the service token.

``create_app`` lists every resource as a ``cleanup_ctx``, in start-up order: database and Redis
clients (which report outages in /ready rather than failing), the executor, the embedder (loaded
once; a missing model file is a configuration error, exit 78), the index store with its snapshot
task, the LLM client, and the services built on them. On SIGTERM, /ready turns 503, new
requests drain, running answers and ingestions get the drain budget to finish, dirty indexes are
snapshotted, and clients close.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import structlog
from aiohttp import web

from ..appkeys import DB, PROCESS, READY_CHECKS, REDIS, SETTINGS
from ..cache.redis_keys import Keys
from ..config import ConfigError, Settings
from ..errors import AppError
from ..lifecycle import install_drain
from ..loops import Stop
from ..web.api import AUTHENTICATORS, Authenticator
from ..web.errors import error_middleware
from ..web.middleware import observe_middleware
from ..web.probes import add_probes
from ..web.resources import database_ctx, redis_ctx
from .chat import ChatService
from .embeddings import EmbedderError, create_embedder
from .index.heads import IndexHeads
from .index.state import IndexLog
from .index.store import IndexStore
from .ingest.pipeline import Ingestor
from .keys import BACKGROUND, CHAT, EMBEDDER, EXECUTOR, INGESTOR, LLM_CLIENT, RETRIEVER, STORE, TOOLS
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


def blocking(app: web.Application) -> Callable[..., asyncio.Future[Any]]:
    """``run(fn, *args)``: ``fn`` in the engine's executor (embedding, chunking, FAISS scans)."""
    loop, executor = asyncio.get_running_loop(), app[EXECUTOR]
    return lambda fn, *args: loop.run_in_executor(executor, partial(fn, *args))


async def executor_ctx(app: web.Application) -> AsyncIterator[None]:
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=max(2, app[SETTINGS].threads), thread_name_prefix="engine")
    yield
    app[EXECUTOR].shutdown(wait=False, cancel_futures=True)


async def embedder_ctx(app: web.Application) -> AsyncIterator[None]:
    """Loaded once; a model that cannot be loaded is a configuration error (exit 78)."""
    run = blocking(app)
    try:
        embedder = await run(create_embedder, app[SETTINGS])
        if getattr(embedder, "dim", 0) == 0:
            await run(embedder.probe)  # the openai backend learns its dimension
    except EmbedderError as exc:
        raise ConfigError("COLLABRY_EMBED_BACKEND", str(exc)) from None
    app[EMBEDDER] = embedder

    async def embedder_loaded() -> None:
        if app.get(EMBEDDER) is None:
            raise RuntimeError("embedder not loaded")

    app[READY_CHECKS]["embedder"] = embedder_loaded
    yield


async def index_store_ctx(app: web.Application) -> AsyncIterator[None]:
    """The users' FAISS indexes, with the task that snapshots changed ones and the gauges."""
    settings, embedder = app[SETTINGS], app[EMBEDDER]
    store = app[STORE] = IndexStore(
        IndexLog(app[DB], IndexHeads(app[REDIS], Keys(settings.redis_prefix))), settings.state_dir,
        model=embedder.model, dim=embedder.dim, memory_budget=settings.index_memory_bytes, run_blocking=blocking(app),
    )  # fmt: skip
    INDEX_SNAPSHOT_AGE.set_function(store.snapshot_age)

    stop = Stop()

    async def gauges() -> None:
        while True:
            INDEX_MEMORY.set(store.memory_bytes)
            INDEX_USERS.set(store.users)
            if not await stop.sleep(5):
                return

    tasks = [asyncio.create_task(store.flush_every(SNAPSHOT_INTERVAL, stop)), asyncio.create_task(gauges())]
    yield
    for task in tasks:
        await stop.stop(task)
    await store.flush()  # last: after the services below have finished their work


async def llm_ctx(app: web.Application) -> AsyncIterator[None]:
    llm = app[LLM_CLIENT] = LLM(app[SETTINGS])
    app[READY_CHECKS]["llm"] = llm.ping
    yield
    await llm.close()


async def services_ctx(app: web.Application) -> AsyncIterator[None]:
    """Ingestion, retrieval, chat and study tools; on the way down, running answers and
    ingestions get the drain budget to finish."""
    settings, db, embedder, store, llm = app[SETTINGS], app[DB], app[EMBEDDER], app[STORE], app[LLM_CLIENT]
    run = blocking(app)
    retriever = app[RETRIEVER] = Retriever(db, embedder, store, run)
    app[INGESTOR] = Ingestor(
        db, embedder, store.log, store, chunk_chars=settings.chunk_chars, chunk_overlap=settings.chunk_overlap,
        batch=settings.embed_batch, run_blocking=run,
    )  # fmt: skip
    app[CHAT] = ChatService(db, app[REDIS], settings, retriever, llm)
    app[TOOLS] = ToolRunner(db, llm, settings, store)
    background = app[BACKGROUND] = set()
    (settings.state_dir / "ingest").mkdir(parents=True, exist_ok=True)
    log.info("engine_ready", embedder=embedder.model, dim=embedder.dim, llm=settings.llm_base_url or "retrieval-only")
    yield
    budget = settings.drain_timeout
    await app[CHAT].shutdown(budget)
    if background:
        _, pending = await asyncio.wait(set(background), timeout=budget)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)


async def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.max_json_bytes, middlewares=[observe_middleware, error_middleware])
    app[SETTINGS] = settings
    app[PROCESS] = "engine"
    app[READY_CHECKS] = {}
    install_drain(app)
    authenticators: dict[str, Authenticator] = {"service": authenticate_service}
    app[AUTHENTICATORS] = authenticators
    # In dependency order; each one's cleanup runs in reverse, so the services finish before the
    # indexes are snapshotted and the executor goes.
    app.cleanup_ctx.extend(
        [database_ctx, redis_ctx, executor_ctx, embedder_ctx, index_store_ctx, llm_ctx, services_ctx]
    )
    add_probes(app)
    routes.add_to(app)
    return app
