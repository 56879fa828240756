"""/api/ai/chat and /api/ai/streams: AI answers delivered as resumable Server-Sent Events.

Generation is decoupled from delivery: the engine writes each answer's events into a Redis stream
(``cache.streams``); this module only relays that stream. So:

- ``POST /api/ai/chat`` checks auth, the per-user AI rate and the plan's daily quota (429
  ``quota_exceeded`` before anything starts), asks the engine to start, then relays from event 1.
- ``GET /api/ai/streams/{id}`` with ``Last-Event-ID: n`` relays from event n+1, on any replica,
  while the stream is retained. Only the owner sees it (404 otherwise).
- A client that goes away stops only its relay; the answer is still generated and saved. Only
  ``POST /api/ai/streams/{id}/cancel`` stops generation.
- Heartbeats (``: ping``) at least every ``Settings.sse_heartbeat`` seconds while waiting.
- Memory per client is bounded: events are read from Redis in small batches and the next batch
  is read only after the last one was written, so a slow client slows only its own relay.
- Waiting costs no Redis connection: one ``StreamWaker`` per process blocks in a few ``XREAD``s
  over all followed streams and wakes the relays whose stream moved; relays read with short,
  non-blocking calls on a small pool of their own that queues bursts instead of failing them. A
  quiet relay pings its client and looks at the writer's heartbeat once per quiet period.
- On SIGTERM every relay is woken at once and ends with a ``retry:`` hint; the client reconnects
  with ``Last-Event-ID`` and nginx sends it to another replica (this one answers 503 meanwhile).
  Relays stuck writing to a client that stopped reading are closed after ``DRAIN_GRACE``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints
from pymongo.errors import PyMongoError
from redis.asyncio import BlockingConnectionPool, Redis

from ...appkeys import DB, DRAIN, SETTINGS
from ...cache.client import REDIS_ERRORS
from ...cache.keys import Keys
from ...cache.streams import StreamReader
from ...config import Settings
from ...db.client import new_id
from ...domain import usage
from ...engine_client import EngineError
from ...errors import AppError, NotFound
from ...metrics import AI_STREAMS, SSE_CLIENTS
from ...realtime.stream_waker import StreamWaker, Subscription
from ...web.api import RequestModel, Routes
from ..engine_client import engine_of, install_engine_client
from ..security import current_user_id, enforce

log = structlog.get_logger("collabry.sse")
routes = Routes("ai")

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
# The longest a relay waits quietly before it checks the writer is alive and its client is there.
MAX_IDLE = 10.0
READ_BATCH = 64  # events per read: what one relay holds in memory at most
RELAY_CONNECTIONS = 32  # the relays' short reads share this many Redis connections per process
RETRY_MS = 1000  # the reconnect delay suggested to clients when a relay ends early
DRAIN_GRACE = 3.0
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

READER = web.AppKey("collabry.stream_reader", StreamReader)
WAKER = web.AppKey("collabry.stream_waker", StreamWaker)
RELAYS = web.AppKey("collabry.sse_relays", dict)  # task of each open relay -> its client's transport


class ChatBody(RequestModel):
    message: str = Field(min_length=1, max_length=8000)
    notebookId: Id | None = None
    sessionId: Id | None = None
    sourceIds: list[Id] | None = Field(default=None, max_length=200)


class CancelResult(BaseModel):
    streamId: str
    cancelling: bool


def idle_seconds(settings: Settings) -> float:
    # A ping goes out after each quiet period, so this is at most the heartbeat period.
    return min(MAX_IDLE, settings.sse_heartbeat * 0.8)


async def _relays_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # Short reads only (nothing blocks on it); a full pool makes callers wait, not fail.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=RELAY_CONNECTIONS, timeout=30, socket_timeout=5, socket_connect_timeout=2
    )
    redis = Redis(connection_pool=pool)
    app[READER] = StreamReader.for_settings(redis, settings)
    waker = StreamWaker(settings.redis_url, Keys(settings.redis_prefix), redis)
    app[WAKER] = waker
    relays: dict[asyncio.Task[Any], asyncio.BaseTransport | None] = {}
    app[RELAYS] = relays

    async def end_relays_on_drain() -> None:
        await app[DRAIN].draining.wait()
        waker.wake_all()  # each relay notices the drain, writes its retry hint and ends
        await asyncio.sleep(DRAIN_GRACE)
        for transport in list(relays.values()):
            if transport is not None:
                transport.close()  # still stuck writing to a client that does not read

    watcher = asyncio.create_task(end_relays_on_drain(), name="sse-drain")
    yield
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    await waker.close()
    await redis.aclose()
    await pool.disconnect()


def setup(app: web.Application) -> None:
    install_engine_client(app)
    app.cleanup_ctx.append(_relays_ctx)


def _refuse_while_draining(request: web.Request) -> None:
    if request.app[DRAIN].draining.is_set():
        # nginx retries a GET on the next replica; a client retries a POST after the hint.
        raise AppError(
            status=503, code="unavailable", message="this replica is shutting down", headers={"Retry-After": "1"}
        )


@routes.post(
    "/api/ai/chat",
    summary="Ask a question; the answer streams back as Server-Sent Events",
    body=ChatBody,
    responses={200: "text/event-stream"},
    rate_limited=True,
)
async def chat(request: web.Request, body: ChatBody) -> web.StreamResponse:
    user_id = current_user_id(request)
    settings = request.app[SETTINGS]
    db = request.app[DB]
    _refuse_while_draining(request)
    await enforce(request, "ai", user_id, settings.ai_limit, fail_open=True)
    try:
        allowed = await usage.consume_for_plan(db, settings, user_id, "ai")
    except PyMongoError as exc:  # the database unreachable or failing: refuse rather than answer unmetered
        log.warning("quota_unavailable", error=str(exc))
        raise AppError(
            status=503, code="unavailable",
            message="the quota cannot be checked right now",
            headers={"Retry-After": "2"},
        ) from None
    if not allowed:
        raise AppError(status=429, code="quota_exceeded", message="today's AI requests for your plan are used up")
    stream_id = new_id()
    try:
        await engine_of(request).start_chat(
            user_id, body.message, stream_id, body.sessionId, body.notebookId, body.sourceIds
        )
    except EngineError:
        await usage.refund(db, user_id, "ai")  # nothing was generated
        raise
    return await _relay(request, stream_id, after=0)


async def _owned_stream(request: web.Request) -> str:
    stream_id = request.match_info["streamId"]
    if not _valid_id(stream_id):
        raise NotFound("stream")
    try:
        meta = await request.app[READER].meta(stream_id)
    except REDIS_ERRORS as exc:
        log.warning("stream_meta_unavailable", error=str(exc))
        raise AppError(
            status=503, code="unavailable", message="answers cannot be read right now", headers={"Retry-After": "2"}
        ) from None
    if meta is None or meta.user_id != current_user_id(request):
        raise NotFound("stream")
    return stream_id


def _valid_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-") for c in value)


def _last_event_id(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or len(raw) > 12:
        raise AppError(
            status=400, code="invalid_request", message="Last-Event-ID must be the id of an event of this stream"
        )
    return int(raw)


@routes.get(
    "/api/ai/streams/{streamId}",
    summary="Resume an answer's event stream after the event named by Last-Event-ID",
    responses={200: "text/event-stream"},
)
async def stream(request: web.Request) -> web.StreamResponse:
    _refuse_while_draining(request)
    after = _last_event_id(request)
    stream_id = await _owned_stream(request)
    return await _relay(request, stream_id, after=after)


@routes.post(
    "/api/ai/streams/{streamId}/cancel",
    summary="Stop generating an answer; its stream ends with done/cancelled",
    responses={202: CancelResult},
)
async def cancel(request: web.Request) -> web.Response:
    stream_id = await _owned_stream(request)
    running = await request.app[READER].request_cancel(stream_id)
    return web.json_response({"streamId": stream_id, "cancelling": running}, status=202)


async def _relay(request: web.Request, stream_id: str, *, after: int) -> web.StreamResponse:
    """Copy the stream's events after ``after`` to the client until the end event."""
    app = request.app
    settings = app[SETTINGS]
    reader = app[READER]
    draining = app[DRAIN].draining
    idle = idle_seconds(settings)
    response = web.StreamResponse(status=200, headers=SSE_HEADERS)
    await response.prepare(request)
    transport = request.transport
    relays = app[RELAYS]
    task = asyncio.current_task()
    assert task is not None
    relays[task] = transport
    SSE_CLIENTS.inc()
    outcome = "failed"
    try:
        async with app[WAKER].subscribe(stream_id, after) as sub:
            outcome, after = await _copy(reader, sub, response, transport, draining, stream_id, after, idle)
    except ConnectionResetError:
        outcome = "client_gone"  # the answer goes on; the client can resume with Last-Event-ID
    except asyncio.CancelledError:
        outcome = "client_gone"
        raise
    except Exception:
        # Headers are sent: no error response is possible any more. The client resumes.
        log.exception("sse_relay_failed", stream_id=stream_id)
    finally:
        relays.pop(task, None)
        SSE_CLIENTS.dec()
        AI_STREAMS.labels(outcome).inc()
    with contextlib.suppress(ConnectionResetError):
        if outcome == "drained":
            await response.write(f"retry: {RETRY_MS}\n\n".encode())
        await response.write_eof()
    return response


async def _copy(
    reader: StreamReader,
    sub: Subscription,
    response: web.StreamResponse,
    transport: asyncio.BaseTransport | None,
    draining: asyncio.Event,
    stream_id: str,
    after: int,
    idle: float,
) -> tuple[str, int]:
    """The relay loop; returns how it ended and the last event id written."""
    last_heartbeat: int | None = None
    while True:
        events = await reader.read(stream_id, after, count=READ_BATCH)
        for event in events:
            await response.write(event.sse())  # waits while the client's socket buffer is full
            after = event.id
            if event.is_end:
                return event.event, after
        if draining.is_set():
            return "drained", after
        if len(events) == READ_BATCH:
            continue  # more may be waiting already
        if await sub.wait(after, idle):
            continue
        # Quiet for a while: is the client still there, and the writer still alive?
        if transport is None or transport.is_closing():
            return "client_gone", after
        meta = await reader.meta(stream_id)
        if meta is None:
            return "vanished", after  # expired before its end event
        if meta.ended and meta.last <= after:
            return "ended", after  # its end event is gone from the retained window
        if not meta.ended and meta.heartbeat_ms == last_heartbeat:
            # The writer has not shown life for a whole quiet period (a live one beats every few
            # seconds). Whether it is stale is decided in Redis, on Redis' clock: if so, the
            # stream ends with an error event, which the next read delivers.
            await reader.close_stale(stream_id)
        last_heartbeat = meta.heartbeat_ms
        await response.write(b": ping\n\n")
