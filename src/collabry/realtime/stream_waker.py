"""One Redis pub/sub connection per process hands every SSE relay its answer's new events.

The engine's stream scripts (``cache.streams``) ``PUBLISH`` each event they append, in the same
script as the ``XADD``, on the stream's channel (``Keys.stream_events``). Each process runs one
``StreamWaker``: one connection subscribed to the channels of the streams its relays follow, and
one task that hands each message to those relays. An event therefore costs one message per
process, whatever the number of open answers, and a relay that waits holds no Redis connection.

Why not blocking reads: a blocking ``XREAD`` per relay needs one connection per open answer, and
one ``XREAD`` over many streams has to be sent again, naming every stream, after each event (its
cost grew with the number of open answers, and a new answer had to interrupt it).

The stream stays the record; messages are only a fast path. A relay reads the stream itself
(``cache.streams.StreamReader``, non-blocking) when its subscription is confirmed, when the events
handed to it do not follow its last one (it fell behind, or messages were lost) and after a quiet
period. A new answer's relay skips the first of these: the gateway subscribes before it asks the
engine to start the answer, and once the subscription is confirmed (``wait_confirmed``) every
event of it is handed over. Every subscription confirmation wakes the relays of that channel, so
after the connection is re-established (redis-py subscribes again on reconnect) each relay reads
what it may have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from ..cache.redis_keys import Keys
from ..cache.streams import StreamEvent, parse_published
from ..loops import Stop, retry_forever

log = structlog.get_logger("collabry.stream_waker")

# A half-open connection (the Redis host vanished without a reset) is noticed within ~25 s; the
# relays read for themselves after each quiet period meanwhile.
KEEPALIVE = {socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 5, socket.TCP_KEEPCNT: 3}
# Streams no relay follows any more are unsubscribed together, this long after the first of them.
UNSUBSCRIBE_AFTER = 0.05


class Subscription:
    """A relay's handle: ``await sub.wait(timeout)`` until woken; ``sub.take(after)`` then gives the
    events handed to it since, or ``None`` when the relay must read the stream itself.

    The first wake is the confirmation of the stream's subscription (or comes at once when the
    process already follows the stream): a read after it cannot miss an event, because every later
    event is handed over.
    """

    __slots__ = ("_held", "_stale", "_woken", "limit", "stream_id")

    def __init__(self, stream_id: str, limit: int = 64) -> None:
        self.stream_id = stream_id
        self.limit = limit  # events held for a relay that is busy writing, at most
        self._woken = asyncio.Event()
        self._held: list[StreamEvent] = []
        self._stale = False  # something may have been missed: the relay reads

    def deliver(self, event: StreamEvent) -> None:
        held = self._held
        if held and (event.id != held[-1].id + 1 or len(held) >= self.limit):
            held.clear()  # not consecutive, or too many: the relay reads from its last event on
        held.append(event)
        self._woken.set()

    def wake(self) -> None:
        """Events may have been missed (a confirmation, a lost connection, an unreadable message)
        or the relay has something else to notice (a drain): it reads the stream."""
        self._stale = True
        self._woken.set()

    def caught_up(self) -> None:
        """The relay has missed nothing so far (its stream had no events yet when the subscription
        was confirmed): the wakes until now ask for no read."""
        self._stale = False
        if not self._held:
            self._woken.clear()

    def take(self, after: int) -> list[StreamEvent] | None:
        """The events handed over since the last take that come after ``after``, when they start
        right after it (ids are consecutive in a stream); ``None`` when the relay must read the
        stream instead: after a wake without events, or when the events do not join ``after``."""
        held, stale = self._held, self._stale
        self._held, self._stale = [], False
        self._woken.clear()
        if stale:
            return None
        if not held:
            return []
        start = after + 1 - held[0].id
        if start < 0:
            return None  # a gap: the missing events are in the stream
        return held[start:]  # empty when the relay has written them all already

    async def wait(self, timeout: float) -> bool:
        """True when woken (new events, a confirmation, a drain), False after ``timeout`` of quiet."""
        if not self._woken.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._woken.wait()
            except TimeoutError:
                return False
        self._woken.clear()
        return True


class _Watch:
    __slots__ = ("confirmed", "retry", "subs")

    def __init__(self) -> None:
        self.subs: set[Subscription] = set()
        self.confirmed = False  # the subscription is active on the current connection
        self.retry: asyncio.Task[None] | None = None  # its first subscribe failed: tried again


class StreamWaker:
    def __init__(self, redis_url: str, keys: Keys, *, batch: int = 64) -> None:
        self.redis_url = redis_url
        self.keys = keys
        self.batch = batch  # events held for one relay at most
        self._watches: dict[bytes, _Watch] = {}  # channel -> the relays following it here
        self._redis: Redis | None = None
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._connecting = asyncio.Lock()
        self._stop = Stop()  # close(): ends the listener and the retries
        self._leaving: set[bytes] = set()  # channels no relay here follows any more
        self._unsubscriber: asyncio.Task[None] | None = None

    async def _connected(self) -> PubSub:
        """The pub/sub connection and its listener, started by the first relay."""
        async with self._connecting:  # relays arriving together must not open one connection each
            if self._pubsub is None:
                self._redis = Redis.from_url(
                    self.redis_url,
                    socket_connect_timeout=2,
                    socket_timeout=5,  # commands; the listener's reads wait without a limit
                    socket_keepalive=True,
                    socket_keepalive_options=KEEPALIVE,
                    driver_info=None,  # as the other clients: no version lookup, no CLIENT SETINFO
                )
                pubsub = self._redis.pubsub()
                try:
                    await pubsub.connect()  # type: ignore[no-untyped-call]
                except BaseException:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await self._redis.aclose()
                    self._redis = None
                    raise
                self._pubsub = pubsub
                self._listener = asyncio.create_task(self._listen(pubsub), name="stream-waker")
            return self._pubsub

    @contextlib.asynccontextmanager
    async def subscribe(self, stream_id: str) -> AsyncIterator[Subscription]:
        """Follow ``stream_id`` for the duration of the block; raises if Redis cannot be reached."""
        sub = Subscription(stream_id, self.batch)
        channel = self.keys.stream_events(stream_id).encode()
        watch = self._watches.get(channel)
        first = watch is None
        if watch is None:
            watch = self._watches[channel] = _Watch()
            self._leaving.discard(channel)  # followed again before its unsubscribe went out
        watch.subs.add(sub)
        try:
            if first:
                try:
                    await (await self._connected()).subscribe(channel)
                except Exception:
                    # Relays that joined meanwhile wait on this subscription: it is tried again for
                    # them. This one fails now, and its client comes back with Last-Event-ID.
                    if len(watch.subs) > 1:

                        async def subscribe_while_followed() -> None:
                            if self._watches.get(channel) is watch:  # else every relay of it left
                                await (await self._connected()).subscribe(channel)

                        watch.retry = asyncio.create_task(
                            retry_forever("stream_subscribe", subscribe_while_followed, self._stop, cap=5.0)
                        )
                    raise
            elif watch.confirmed:
                sub.wake()
            yield sub
        finally:
            watch.subs.discard(sub)
            if not watch.subs and self._watches.get(channel) is watch:
                del self._watches[channel]
                self._leave(channel)

    def _leave(self, channel: bytes) -> None:
        """Unsubscribe from ``channel`` soon, together with the others left meanwhile: one command
        for many answers, off the relays' way out. Until then its messages find no relay here and
        are dropped (an ended stream publishes nothing more anyway)."""
        self._leaving.add(channel)
        if self._unsubscriber is None or self._unsubscriber.done():
            self._unsubscriber = asyncio.create_task(self._unsubscribe_left(), name="stream-waker-unsubscribe")

    async def unsubscribed(self) -> None:
        """Wait until the unsubscribes queued so far have gone out."""
        if self._unsubscriber is not None:
            await asyncio.wait([self._unsubscriber])

    async def _unsubscribe_left(self) -> None:
        await asyncio.sleep(UNSUBSCRIBE_AFTER)  # a batching window, not a wait for anything
        channels, self._leaving = self._leaving, set()
        if channels and self._pubsub is not None:
            with contextlib.suppress(Exception):  # gone with the connection anyway
                await self._pubsub.unsubscribe(*channels)

    async def wait_confirmed(self, sub: Subscription, timeout: float) -> bool:
        """For a stream that has no events yet: wait up to ``timeout`` until its subscription is
        active. True then, and every event appended from now on reaches ``sub`` (the relay needs
        no read of its own to start); False when it is not confirmed in time."""
        watch = self._watches.get(self.keys.stream_events(sub.stream_id).encode())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while watch is not None and not watch.confirmed:
            if not await sub.wait(deadline - loop.time()):
                return False
        if watch is None:
            return False
        sub.caught_up()
        return True

    async def _listen(self, pubsub: PubSub) -> None:
        delay = 0.2
        while not self._stop.requested:  # see close()
            try:
                message = await pubsub.get_message(timeout=None)
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # redis-py subscribes again when it reconnects; those confirmations wake the relays.
                log.warning("stream_waker_retrying", error=str(exc), delay=round(delay, 2))
                for watch in self._watches.values():
                    watch.confirmed = False
                self.wake_all()  # relays look at their streams themselves meanwhile
                if not await self._stop.sleep(random.uniform(delay / 2, delay)):
                    return
                delay = min(5.0, delay * 2)
                continue
            if message is not None and not self._dispatch(message):
                # No relay follows it any more (its relay left while Redis was unreachable, and
                # redis-py subscribed again on reconnect): stop receiving it.
                with contextlib.suppress(Exception):
                    await pubsub.unsubscribe(message["channel"])

    def _dispatch(self, message: dict[str, Any]) -> bool:
        """Hand a message to its relays; False for a confirmation nobody here waits for."""
        kind: str = message["type"]
        watch = self._watches.get(message["channel"])
        if watch is None:
            return kind != "subscribe"
        if kind == "message":
            try:
                event = parse_published(message["data"])
            except ValueError:  # not written by the stream scripts: the relays read the stream
                log.warning("stream_waker_unreadable_message", channel=message["channel"].decode(errors="replace"))
                for sub in watch.subs:
                    sub.wake()
                return True
            for sub in watch.subs:
                sub.deliver(event)
        elif kind == "subscribe":
            watch.confirmed = True
            for sub in watch.subs:
                sub.wake()
        return True

    def wake_all(self) -> None:
        """Wake every relay (shutdown: they notice the drain and end)."""
        for watch in self._watches.values():
            for sub in watch.subs:
                sub.wake()

    @property
    def watched(self) -> int:
        return len(self._watches)

    async def close(self) -> None:
        # On Python 3.11 a cancel can be lost inside redis-py (its ``asyncio.wait_for`` around a
        # write), and the listener outlives errors by design: the stop request, and closing its
        # connection under it, end it whatever happened to the cancel.
        self._stop.request()
        for watch in self._watches.values():
            if watch.retry is not None:
                watch.retry.cancel()
        if self._unsubscriber is not None:
            self._unsubscriber.cancel()  # the connection's end unsubscribes everything
            await asyncio.wait([self._unsubscriber])
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            await asyncio.wait([listener], timeout=1.0)
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        if self._redis is not None:
            await self._redis.aclose()
        self._pubsub = self._redis = None
        if listener is not None:
            await asyncio.wait([listener])
