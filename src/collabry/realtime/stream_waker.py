"""A few blocking reads per process tell every SSE relay when its answer's stream has new events.

A relay that waited with its own blocking ``XREAD`` would hold a Redis connection for as long as
its client stays: thousands of open answers would mean thousands of connections, and a burst of
clients resuming after a replica died would open them all at once. Instead each process runs one
``StreamWaker``: the followed streams are split into shards of at most ``SHARD_SIZE``, each shard
has one connection blocked in one ``XREAD`` over its streams, and a reply wakes the relays of the
streams that moved and hands them the events it read (up to ``batch`` per stream): a relay whose
last event is the one before them writes them without asking Redis again. A relay that fell
behind, or is woken without events (a drain, a shard's read that failed), reads for itself with
``cache.streams.StreamReader`` (non-blocking, on a small shared pool).

A relay that starts following a stream its shard's current ``XREAD`` does not cover interrupts
that read (``CLIENT UNBLOCK``; interruptions within a couple of milliseconds are coalesced, and a
shard's read is rebuilt in time proportional to the shard, not to every stream of the process).
A read that returns re-blocks from the newest entry it saw, so one event wakes its relays once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis.asyncio import Redis

from ..cache.redis_keys import Keys
from ..cache.streams import StreamEvent, events_of

log = structlog.get_logger("collabry.stream_waker")

SHARD_SIZE = 256
COALESCE = 0.002  # seconds new streams wait for company before interrupting their shard's read


class Subscription:
    """A relay's handle: ``await sub.wait(after, timeout)`` until events after ``after`` may exist;
    ``sub.take(after)`` then gives the events the waker read for it, if they follow ``after``."""

    __slots__ = ("_delivered", "_woken", "after", "stream_id")

    def __init__(self, stream_id: str, after: int) -> None:
        self.stream_id = stream_id
        self.after = after
        self._woken = asyncio.Event()
        self._delivered: list[StreamEvent] = []

    def wake(self, events: list[StreamEvent] | None = None) -> None:
        if events:
            self._delivered = events  # the newest read replaces an older one not taken yet
        self._woken.set()

    def take(self, after: int) -> list[StreamEvent]:
        """The delivered events after ``after`` when they start right after it (ids are consecutive
        in a stream); otherwise none, and the relay reads from Redis."""
        delivered, self._delivered = self._delivered, []
        if not delivered:
            return []
        start = after + 1 - delivered[0].id
        if start < 0 or start >= len(delivered) or delivered[-1].id - delivered[0].id != len(delivered) - 1:
            return []
        return delivered[start:]

    async def wait(self, after: int, timeout: float) -> bool:
        """True when woken (new events, or a drain), False after ``timeout`` seconds of quiet."""
        self.after = after
        if not self._woken.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._woken.wait()
            except TimeoutError:
                return False
        self._woken.clear()
        return True


@dataclass
class _Watch:
    key: str
    subs: set[Subscription] = field(default_factory=set)
    seen: int = 0  # newest event id the relays were woken for

    def position(self) -> int:
        return max(self.seen, min((s.after for s in self.subs), default=self.seen))


class _Shard:
    """One connection blocked in one XREAD over up to SHARD_SIZE streams."""

    def __init__(self, redis: Redis, control: Redis, block_ms: int, batch: int) -> None:
        self.redis = redis
        self.control = control
        self.block_ms = block_ms
        self.batch = batch
        self.watches: dict[str, _Watch] = {}
        self.by_key: dict[bytes, str] = {}
        self.covered: set[str] = set()  # streams in the XREAD now blocking
        self.changed = asyncio.Event()
        self.client_id: int | None = None
        self.blocking = False
        self.interrupting: asyncio.Task[None] | None = None
        self.task = asyncio.create_task(self._run(), name="stream-waker-shard")

    def add(self, stream_id: str, key: str) -> _Watch:
        watch = self.watches.get(stream_id)
        if watch is None:
            watch = self.watches[stream_id] = _Watch(key)
            self.by_key[key.encode()] = stream_id
        return watch

    def drop(self, stream_id: str) -> None:
        watch = self.watches.pop(stream_id, None)
        if watch is not None:
            self.by_key.pop(watch.key.encode(), None)

    def cover(self, stream_id: str) -> None:
        """Make the blocking read include ``stream_id`` soon: interrupt it unless it already does."""
        self.changed.set()
        if stream_id not in self.covered and self.blocking and self.interrupting is None:
            self.interrupting = asyncio.create_task(self._interrupt())

    async def _interrupt(self) -> None:
        # CLIENT UNBLOCK answers 0 when the read was sent but has not reached Redis yet: repeat a
        # few times, milliseconds apart, until it is interrupted or reissued with the new streams.
        try:
            await asyncio.sleep(COALESCE)
            for _ in range(25):
                if not self.blocking or self.client_id is None:
                    return
                if await self.control.client_unblock(self.client_id):
                    return
                await asyncio.sleep(COALESCE)
        except Exception as exc:  # the streams are then covered when the read times out
            log.warning("stream_waker_unblock_failed", error=str(exc))
        finally:
            self.interrupting = None

    def wake_all(self) -> None:
        for watch in list(self.watches.values()):
            for sub in list(watch.subs):
                sub.wake()

    async def close(self) -> None:
        for task in (self.task, self.interrupting):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.redis.aclose()

    async def _run(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._watch_once()
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.client_id = None
                log.warning("stream_waker_retrying", error=str(exc), delay=round(delay, 2))
                self.wake_all()  # relays look at their streams themselves meanwhile
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay = min(5.0, delay * 2)

    async def _watch_once(self) -> None:
        if not self.watches:
            self.covered = set()
            self.changed.clear()
            await self.changed.wait()
        if self.client_id is None:
            self.client_id = int(await self.redis.client_id())
        self.changed.clear()
        streams: dict[Any, Any] = {w.key: f"{w.position()}-0" for w in self.watches.values()}
        self.covered = set(self.watches)
        self.blocking = True
        try:
            reply: Any = await self.redis.xread(streams, count=self.batch, block=self.block_ms)
        finally:
            self.blocking = False
        for key, entries in reply or ():
            stream_id = self.by_key.get(key if isinstance(key, bytes) else key.encode())
            watch = self.watches.get(stream_id) if stream_id else None
            if watch is None or not entries:
                continue
            events = events_of(entries)
            watch.seen = max(watch.seen, events[-1].id)
            for sub in list(watch.subs):
                sub.wake(events)


class StreamWaker:
    def __init__(
        self, redis_url: str, keys: Keys, control: Redis, *, block_ms: int = 5000, batch: int = 64
    ) -> None:
        self.redis_url = redis_url
        self.keys = keys
        self.control = control  # short commands (CLIENT UNBLOCK) go through the shared pool
        self.block_ms = block_ms
        self.batch = batch  # events handed to the relays per stream and read
        self.shards: list[_Shard] = []
        self._shard_of: dict[str, _Shard] = {}

    def _new_shard(self) -> _Shard:
        # Each shard's blocking read has its own connection, with a socket timeout above the block.
        redis = Redis.from_url(
            self.redis_url,
            single_connection_client=True,
            socket_timeout=self.block_ms / 1000 + 5,
            socket_connect_timeout=2,
        )
        shard = _Shard(redis, self.control, self.block_ms, self.batch)
        self.shards.append(shard)
        return shard

    def _shard_for(self, stream_id: str) -> _Shard:
        shard = self._shard_of.get(stream_id)
        if shard is None:
            shard = next((s for s in self.shards if len(s.watches) < SHARD_SIZE), None) or self._new_shard()
            self._shard_of[stream_id] = shard
        return shard

    @contextlib.asynccontextmanager
    async def subscribe(self, stream_id: str, after: int) -> AsyncIterator[Subscription]:
        sub = Subscription(stream_id, after)
        shard = self._shard_for(stream_id)
        watch = shard.add(stream_id, self.keys.stream(stream_id))
        watch.subs.add(sub)
        shard.cover(stream_id)
        try:
            yield sub
        finally:
            watch.subs.discard(sub)
            if not watch.subs:
                shard.drop(stream_id)
                self._shard_of.pop(stream_id, None)

    def wake_all(self) -> None:
        """Wake every relay (shutdown: they notice the drain and end)."""
        for shard in self.shards:
            shard.wake_all()

    @property
    def watched(self) -> int:
        return len(self._shard_of)

    async def close(self) -> None:
        for shard in self.shards:
            await shard.close()
        self.shards = []
