"""Relaying an answer's Redis stream to its client as Server-Sent Events.

Generation is decoupled from delivery: the engine writes each answer's events into a Redis stream
(``cache.streams``); a relay copies that stream to one client, from the event after the one the
client last saw (``Last-Event-ID``), on any replica, while the stream is retained.

- A client that goes away stops only its relay; the answer is still generated and saved.
- Heartbeats (``: ping``) at least every ``Settings.sse_heartbeat`` seconds while waiting.
- Memory per client is bounded: events are read from Redis in small batches and the next batch
  is read only after the last one was written, so a slow client slows only its own relay.
- Waiting costs no Redis connection: the engine publishes each event as it appends it, and one
  ``StreamWaker`` per process, subscribed to the followed streams' channels on one connection,
  hands each event to the relays of its stream, which write it as it comes. A relay reads the
  stream itself (short, non-blocking calls on a small pool of its own that queues bursts instead
  of failing them) once its subscription is confirmed, when the events handed to it do not follow
  its last one, and after a quiet period, when it pings its client and looks at the writer's
  heartbeat. A new answer is followed before it starts (``following_new``), so its relay needs no
  first read, and its headers leave with its first event.
- Writes per answer are few: what is at hand goes out in one write, and the end event leaves
  with the end of the response.
- On SIGTERM every relay is woken at once and ends with a ``retry:`` hint; the client reconnects
  with ``Last-Event-ID`` and nginx sends it to another replica. Relays stuck writing to a client
  that stopped reading are closed after ``DRAIN_GRACE``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from ..appkeys import DRAIN, SETTINGS
from ..cache.redis_keys import Keys
from ..cache.streams import StreamReader
from ..config import Settings
from ..metrics import AI_STREAMS, SSE_CLIENTS
from ..realtime.stream_waker import StreamWaker, Subscription
from .keys import RELAYS

log = structlog.get_logger("collabry.sse")

# The longest a relay waits quietly before it checks the writer is alive and its client is there.
MAX_IDLE = 10.0
READ_BATCH = 64  # events per read: what one relay holds in memory at most
RELAY_CONNECTIONS = 32  # the relays' short reads share this many Redis connections per process
RETRY_MS = 1000  # the reconnect delay suggested to clients when a relay ends early
# How long a new relay waits for its subscription to be confirmed before it reads anyway (events
# after its read may then wait for the next one or for a quiet period).
CONFIRM_WAIT = 1.0
DRAIN_GRACE = 3.0
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class HeadersWithFirstWrite(web.StreamResponse):
    """A streamed response whose status line and headers leave with its first bytes, in one write
    (aiohttp's ``StreamResponse`` sends them at ``prepare``; its ``Response`` buffers them so)."""

    _send_headers_immediately = False


def idle_seconds(settings: Settings) -> float:
    # A ping goes out after each quiet period, so this is at most the heartbeat period.
    return min(MAX_IDLE, settings.sse_heartbeat * 0.8)


class Relays:
    """The process's stream reader and waker, and the relays open right now."""

    def __init__(self, settings: Settings, reader: StreamReader, waker: StreamWaker, draining: asyncio.Event) -> None:
        self.settings = settings
        self.reader = reader
        self.waker = waker
        self.draining = draining
        self.open: dict[asyncio.Task[Any], asyncio.BaseTransport | None] = {}  # relay task -> client transport

    async def end_on_drain(self) -> None:
        await self.draining.wait()
        self.waker.wake_all()  # each relay notices the drain, writes its retry hint and ends
        await asyncio.sleep(DRAIN_GRACE)
        for transport in list(self.open.values()):
            if transport is not None:
                transport.close()  # still stuck writing to a client that does not read

    @contextlib.asynccontextmanager
    async def following_new(self, stream_id: str) -> AsyncIterator[Subscription | None]:
        """Follow a stream before it is started, for the duration of the block: yields the
        subscription once Redis confirmed it (every event of the stream then reaches it), or None
        when that took longer than ``CONFIRM_WAIT`` (the relay then opens its own and reads).
        Raises when Redis cannot be reached."""
        async with self.waker.subscribe(stream_id) as sub:
            yield sub if await self.waker.wait_confirmed(sub, CONFIRM_WAIT) else None

    async def relay(
        self, request: web.Request, stream_id: str, *, after: int, following: Subscription | None = None
    ) -> web.StreamResponse:
        """Copy the stream's events after ``after`` to the client until the end event.

        ``following``: the caller's subscription from ``following_new``, confirmed before the stream
        had any event: every event then reaches it, and the relay starts without a read."""
        # A new answer's first event exists already: its headers can wait for it and leave in the
        # same write. A resumed one may have nothing new for a while: its headers go at once.
        response_class = HeadersWithFirstWrite if following is not None else web.StreamResponse
        response = response_class(status=200, headers=SSE_HEADERS)
        await response.prepare(request)
        transport = request.transport
        task = asyncio.current_task()
        assert task is not None
        self.open[task] = transport
        SSE_CLIENTS.inc()
        outcome = "failed"
        try:
            if following is not None:
                outcome, tail = await self._copy(following, response, transport, stream_id, after, caught_up=True)
            else:
                async with self.waker.subscribe(stream_id) as sub:
                    outcome, tail = await self._copy(sub, response, transport, stream_id, after, caught_up=False)
            if outcome == "drained":
                tail = f"retry: {RETRY_MS}\n\n".encode()
            await response.write_eof(tail)  # the last events and the end of the response: one write
        except ConnectionResetError:
            outcome = "client_gone"  # the answer goes on; the client can resume with Last-Event-ID
        except asyncio.CancelledError:
            outcome = "client_gone"
            raise
        except Exception:
            # Headers are sent: no error response is possible any more. The client resumes.
            log.exception("sse_relay_failed", stream_id=stream_id)
        finally:
            self.open.pop(task, None)
            SSE_CLIENTS.dec()
            AI_STREAMS.labels(outcome).inc()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()  # after a failure (a no-op when the end was written)
        return response

    async def _copy(
        self,
        sub: Subscription,
        response: web.StreamResponse,
        transport: asyncio.BaseTransport | None,
        stream_id: str,
        after: int,
        *,
        caught_up: bool,
    ) -> tuple[str, bytes]:
        """The relay loop; returns how it ended and what is left to write: the last events, up to
        the end event, which leave with the end of the response (``relay``) in one write."""
        reader, idle = self.reader, idle_seconds(self.settings)
        last_heartbeat: int | None = None
        must_read = not caught_up
        if must_read:
            await sub.wait(CONFIRM_WAIT)  # from the confirmation on, every new event is handed over
        while True:
            handed = sub.take(after)
            if handed is None or must_read:
                events = await reader.read(stream_id, after, count=READ_BATCH)
            else:
                events = handed
            must_read = False
            if events:
                # One write (one send) for what is at hand; it waits while the client's socket
                # buffer is full. Nothing follows an end event.
                batch, last = b"".join(event.sse() for event in events), events[-1]
                if last.is_end:
                    return last.event, batch
                await response.write(batch)
                after = last.id
            if self.draining.is_set():
                return "drained", b""
            if len(events) == READ_BATCH:
                must_read = True  # more may be waiting already
                continue
            if await sub.wait(idle):
                continue
            # Quiet for a while: is the client still there, and the writer still alive?
            if transport is None or transport.is_closing():
                return "client_gone", b""
            meta = await reader.meta(stream_id)
            if meta is None:
                return "vanished", b""  # expired before its end event
            if meta.ended and meta.last <= after:
                return "ended", b""  # its end event is gone from the retained window
            if not meta.ended and meta.heartbeat_ms == last_heartbeat:
                # The writer has not shown life for a whole quiet period (a live one beats every few
                # seconds). Whether it is stale is decided in Redis, on Redis' clock: if so, the
                # stream ends with an error event, which the next read delivers.
                await reader.close_stale(stream_id)
            last_heartbeat = meta.heartbeat_ms
            await response.write(b": ping\n\n")
            must_read = True  # quiet for a whole period: look at the stream itself


async def relays_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the relays' Redis pool, the stream waker and the drain watcher."""
    settings = app[SETTINGS]
    # Short reads only (nothing blocks on it); a full pool makes callers wait, not fail. No
    # driver info: redis-py would otherwise look its own version up in the installed packages'
    # metadata for every new connection (~8 ms of CPU each, while a burst grows the pool) and
    # send it with CLIENT SETINFO, a round trip that tells Redis nothing we use.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=RELAY_CONNECTIONS,
        timeout=30,
        socket_timeout=5,
        socket_connect_timeout=2,
        driver_info=None,
    )
    redis = Redis(connection_pool=pool)
    waker = StreamWaker(settings.redis_url, Keys(settings.redis_prefix), batch=READ_BATCH)
    relays = app[RELAYS] = Relays(settings, StreamReader.for_settings(redis, settings), waker, app[DRAIN].draining)
    watcher = asyncio.create_task(relays.end_on_drain(), name="sse-drain")
    yield
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    await waker.close()
    await redis.aclose()
    await pool.disconnect()
