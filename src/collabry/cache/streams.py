"""The Redis stream of one AI answer: the only module that knows its format.

The engine writes an answer's events with a ``StreamWriter`` while it generates; gateways read them
with a ``StreamReader`` and relay them as SSE. Nothing else touches these keys.

Keys (see ``cache.redis_keys``), for stream id ``S``:

- ``stream:S``: a Redis stream. Entry ids are ``n-0`` with ``n`` = 1, 2, 3, ... (the SSE ``id:``);
  each entry has the fields ``event`` (``meta``, ``sources``, ``token``, ``done``, ``error``) and
  ``data`` (a JSON object, as text). ``done`` and ``error`` are end events: exactly one ends a stream.
- ``stream-meta:S``: a hash ``{user_id, session_id, message_id, state, heartbeat, last}``;
  ``state`` is ``running``, ``done`` or ``error``; ``heartbeat`` is the Redis server time in
  milliseconds of the writer's last sign of life; ``last`` is the last event id written.
- ``stream-cancel:S``: present when a cancel was requested.
- ``stream-events:S``: a pub/sub channel (not a key). Each event is published there, as
  ``<id> <event> <data>``, by the same script that appends it, so a subscriber that reads the
  stream after its subscription is confirmed misses nothing.

Lifetime: while running, every key expires ``running_ttl`` seconds after the last heartbeat (so an
abandoned stream disappears even if nobody closes it); after the end event every key expires
``retention`` seconds later. Every write is a Lua script that checks ``state == running``, so a
stream ends exactly once even when a gateway closes a stale stream while its writer is still alive.
All times are Redis server time, so replicas with skewed clocks agree on staleness.

Usage (engine)::

    writer = StreamWriter(redis, stream_id, keys=keys, retention=600)
    await writer.start(user_id=u, session_id=s, message_id=m)  # event 1 = meta; raises StreamExists
    async with writer.heartbeating():
        await writer.append("sources", {"sources": [...]})
        if await writer.cancel_requested(): ...
        await writer.finish("done", {"finishReason": "stop", "usage": {...}})

Usage (gateway; the SSE relay in ``gateway.relay`` is the one reader of events)::

    reader = StreamReader.for_settings(redis, settings)
    meta = await reader.meta(stream_id)  # None: unknown or expired -> 404; check meta.user_id
    events = await reader.read(stream_id, after=last_event_id)  # send each event.sse(); when quiet,
    await reader.close_stale(stream_id)  # after the waker's timeout, if the writer stopped beating
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from ..config import Settings
from ..errors import StreamInterrupted
from ..loops import Stop
from .redis_keys import Keys

END_EVENTS = frozenset({"done", "error"})
EVENTS = frozenset({"meta", "sources", "token"}) | END_EVENTS

DEFAULT_MAX_EVENTS = 4096
DEFAULT_HEARTBEAT = 2.0
DEFAULT_STALE_AFTER = 15.0
DEFAULT_RUNNING_TTL = 3600

# Every script that appends an event also publishes it, as "<id> <event> <data>", on the stream's
# channel (the last ARGV; ``Keys.stream_events``): the gateways' relays get it from there
# (``realtime.stream_waker``) and read the stream only to catch up.

# KEYS: stream, meta, cancel. ARGV: user_id, session_id, message_id, running_ttl, max_events, data,
# channel.
_START = """
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('HSET', KEYS[2], 'user_id', ARGV[1], 'session_id', ARGV[2], 'message_id', ARGV[3],
  'state', 'running', 'heartbeat', now, 'last', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '1-0', 'event', 'meta', 'data', ARGV[6])
redis.call('PUBLISH', ARGV[7], '1 meta ' .. ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS: stream, meta, cancel. ARGV: event, data, max_events, end state ('' = not an end), ttl,
# channel. Returns the new event id, or 0 when the stream has already ended (or vanished).
_APPEND = """
if redis.call('HGET', KEYS[2], 'state') ~= 'running' then return 0 end
local n = tonumber(redis.call('HGET', KEYS[2], 'last')) + 1
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], n .. '-0', 'event', ARGV[1], 'data', ARGV[2])
redis.call('PUBLISH', ARGV[6], n .. ' ' .. ARGV[1] .. ' ' .. ARGV[2])
local t = redis.call('TIME')
redis.call('HSET', KEYS[2], 'last', n, 'heartbeat', t[1] * 1000 + math.floor(t[2] / 1000))
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], 'state', ARGV[4])
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
end
return n
"""

# KEYS: stream, meta, cancel. ARGV: running_ttl. Returns 1 while running, 0 otherwise.
_HEARTBEAT = """
if redis.call('HGET', KEYS[2], 'state') ~= 'running' then return 0 end
local t = redis.call('TIME')
redis.call('HSET', KEYS[2], 'heartbeat', t[1] * 1000 + math.floor(t[2] / 1000))
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[1]) end
return 1
"""

# KEYS: stream, meta, cancel. ARGV: stale_after_ms, data, max_events, retention, channel.
# Appends an error end event when the stream is running and its heartbeat is older than stale_after.
_CLOSE_STALE = """
if redis.call('HGET', KEYS[2], 'state') ~= 'running' then return 0 end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local beat = tonumber(redis.call('HGET', KEYS[2], 'heartbeat')) or 0
if now - beat < tonumber(ARGV[1]) then return 0 end
local n = tonumber(redis.call('HGET', KEYS[2], 'last')) + 1
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], n .. '-0', 'event', 'error', 'data', ARGV[2])
redis.call('PUBLISH', ARGV[5], n .. ' error ' .. ARGV[2])
redis.call('HSET', KEYS[2], 'last', n, 'state', 'error')
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[4]) end
return n
"""

# KEYS: meta, cancel. ARGV: running_ttl. Sets the flag only for a running stream; 1 if set.
_CANCEL = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
return 1
"""


class StreamExists(Exception):
    """``StreamWriter.start`` on an id that is already in use."""


class StreamEnded(Exception):
    """An append to a stream that has already ended (finished, closed as stale, or expired)."""


@dataclass(frozen=True, slots=True)
class StreamEvent:
    id: int
    event: str
    data: str  # a JSON object as text, relayed verbatim as the SSE data line

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.data)
        return data

    @property
    def is_end(self) -> bool:
        return self.event in END_EVENTS

    def sse(self) -> bytes:
        """The event in SSE wire format (id, event, data, blank line)."""
        return f"id: {self.id}\nevent: {self.event}\ndata: {self.data}\n\n".encode()


@dataclass(frozen=True, slots=True)
class StreamMeta:
    stream_id: str
    user_id: str
    session_id: str
    message_id: str
    state: str  # running | done | error
    heartbeat_ms: int  # Redis server time of the writer's last sign of life
    last: int  # id of the last event written

    @property
    def ended(self) -> bool:
        return self.state != "running"


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def events_of(entries: list[Any]) -> list[StreamEvent]:
    """The events of one stream's entries as ``XREAD`` returns them (``[(id, {field: value})]``)."""
    events = []
    for entry_id, fields in entries:
        f = {_text(k): _text(v) for k, v in fields.items()}
        events.append(StreamEvent(int(_text(entry_id).split("-", 1)[0]), f["event"], f["data"]))
    return events


def parse_published(payload: bytes) -> StreamEvent:
    """An event as the stream scripts publish it on the stream's channel: ``<id> <event> <data>``."""
    event_id, event, data = payload.decode().split(" ", 2)
    return StreamEvent(int(event_id), event, data)


def stale_error(message: str = "the answer was interrupted; please ask again") -> dict[str, Any]:
    return StreamInterrupted(message).body()


class StreamWriter:
    """Appends one answer's events. One writer per stream; not shared between tasks."""

    def __init__(
        self,
        redis: Redis,
        stream_id: str,
        *,
        keys: Keys | None = None,
        retention: int = 600,
        max_events: int = DEFAULT_MAX_EVENTS,
        heartbeat: float = DEFAULT_HEARTBEAT,
        running_ttl: int = DEFAULT_RUNNING_TTL,
        cancel_check_interval: float = 0.2,
    ) -> None:
        self.redis = redis
        self.stream_id = stream_id
        keys = keys or Keys()
        self._keys = [keys.stream(stream_id), keys.stream_meta(stream_id), keys.stream_cancel(stream_id)]
        self._channel = keys.stream_events(stream_id)
        self.retention = retention
        self.max_events = max_events
        self.heartbeat_interval = heartbeat
        self.running_ttl = running_ttl
        self.cancel_check_interval = cancel_check_interval
        self.last_id = 0
        self._cancel_checked_at = 0.0
        self._cancelled = False
        self._start = redis.register_script(_START)
        self._append = redis.register_script(_APPEND)
        self._beat = redis.register_script(_HEARTBEAT)

    @classmethod
    def for_settings(cls, redis: Redis, stream_id: str, settings: Settings) -> StreamWriter:
        return cls(
            redis,
            stream_id,
            keys=Keys(settings.redis_prefix),
            retention=settings.stream_retention,
            max_events=settings.stream_max_events,
        )

    async def start(self, *, user_id: str, session_id: str, message_id: str) -> None:
        """Create the stream with event 1 = ``meta``; raises ``StreamExists`` if the id is taken."""
        data = _json({"streamId": self.stream_id, "sessionId": session_id, "messageId": message_id})
        args: list[str | int] = [user_id, session_id, message_id, self.running_ttl, self.max_events, data]
        args.append(self._channel)
        if not int(await self._start(keys=self._keys, args=args)):
            raise StreamExists(self.stream_id)
        self.last_id = 1

    async def append(self, event: str, data: dict[str, Any]) -> int:
        """Append a non-end event; returns its id. Raises ``StreamEnded`` if the stream has ended."""
        if event not in EVENTS or event in END_EVENTS:
            raise ValueError(f"not an intermediate event: {event!r}")
        return await self._write(event, data, "")

    async def finish(self, event: str, data: dict[str, Any]) -> bool:
        """Append the end event (``done`` or ``error``); False if the stream had already ended."""
        if event not in END_EVENTS:
            raise ValueError(f"not an end event: {event!r}")
        try:
            await self._write(event, data, event)
        except StreamEnded:
            return False
        return True

    async def _write(self, event: str, data: dict[str, Any], end_state: str) -> int:
        args: list[str | int] = [event, _json(data), self.max_events, end_state, self.retention, self._channel]
        n = int(await self._append(keys=self._keys, args=args))
        if n == 0:
            raise StreamEnded(self.stream_id)
        self.last_id = n
        return n

    async def beat(self) -> bool:
        """Record a sign of life; False once the stream has ended."""
        return bool(int(await self._beat(keys=self._keys, args=[self.running_ttl])))

    @contextlib.asynccontextmanager
    async def heartbeating(self) -> AsyncIterator[None]:
        """Keep the heartbeat fresh in the background for the duration of the block."""
        stop = Stop()  # a cancel alone may be lost (``loops``), and this loop outlives Redis errors

        async def loop() -> None:
            while await stop.sleep(self.heartbeat_interval):
                with contextlib.suppress(Exception):  # a Redis blip must not end the answer
                    if not await self.beat():
                        return

        task = asyncio.create_task(loop(), name=f"stream-heartbeat:{self.stream_id}")
        try:
            yield
        finally:
            await stop.stop(task)

    async def cancel_requested(self) -> bool:
        """Whether a cancel was requested; asks Redis at most every ``cancel_check_interval`` s."""
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._cancel_checked_at >= self.cancel_check_interval:
            self._cancel_checked_at = now
            self._cancelled = bool(await self.redis.exists(self._keys[2]))
        return self._cancelled


class StreamReader:
    """Reads streams for delivery; also requests cancels and closes streams whose writer died."""

    def __init__(
        self,
        redis: Redis,
        *,
        keys: Keys | None = None,
        retention: int = 600,
        max_events: int = DEFAULT_MAX_EVENTS,
        running_ttl: int = DEFAULT_RUNNING_TTL,
    ) -> None:
        self.redis = redis
        self.keys = keys or Keys()
        self.retention = retention
        self.max_events = max_events
        self.running_ttl = running_ttl
        self.stale_after = DEFAULT_STALE_AFTER
        self._close_stale = redis.register_script(_CLOSE_STALE)
        self._cancel = redis.register_script(_CANCEL)

    @classmethod
    def for_settings(cls, redis: Redis, settings: Settings) -> StreamReader:
        """A reader whose ``close_stale`` defaults to ``settings.stream_stale_after``."""
        reader = cls(
            redis,
            keys=Keys(settings.redis_prefix),
            retention=settings.stream_retention,
            max_events=settings.stream_max_events,
        )
        reader.stale_after = settings.stream_stale_after
        return reader

    def _all_keys(self, stream_id: str) -> list[str]:
        k = self.keys
        return [k.stream(stream_id), k.stream_meta(stream_id), k.stream_cancel(stream_id)]

    async def meta(self, stream_id: str) -> StreamMeta | None:
        """The stream's metadata, or None when it does not exist (never did, or expired)."""
        raw = await self.redis.hgetall(self.keys.stream_meta(stream_id))
        if not raw:
            return None
        m = {_text(k): _text(v) for k, v in raw.items()}
        return StreamMeta(
            stream_id=stream_id,
            user_id=m.get("user_id", ""),
            session_id=m.get("session_id", ""),
            message_id=m.get("message_id", ""),
            state=m.get("state", "error"),
            heartbeat_ms=int(m.get("heartbeat", 0)),
            last=int(m.get("last", 0)),
        )

    async def read(
        self, stream_id: str, after: int = 0, *, block_ms: int | None = None, count: int = 256
    ) -> list[StreamEvent]:
        """Events with id > ``after``, in order; with ``block_ms``, waits that long for the first one.

        Keep ``block_ms`` below the Redis client's socket timeout.
        """
        key = self.keys.stream(stream_id)
        reply: Any = await self.redis.xread({key: f"{max(after, 0)}-0"}, count=count, block=block_ms)
        events: list[StreamEvent] = []
        for _key, entries in reply or ():
            events += events_of(entries)
        return events

    async def request_cancel(self, stream_id: str) -> bool:
        """Ask the writer to stop; True if the stream was running (the writer ends it with done)."""
        k = self.keys
        return bool(
            int(
                await self._cancel(keys=[k.stream_meta(stream_id), k.stream_cancel(stream_id)], args=[self.running_ttl])
            )
        )

    async def close_stale(
        self, stream_id: str, *, stale_after: float | None = None, error: dict[str, str] | None = None
    ) -> bool:
        """End a running stream whose writer has not shown life for ``stale_after`` seconds.

        Appends an ``error`` end event; True if this call closed it. Safe to call from any
        process at any time: a live writer's stream is left alone, and a stream ends only once.
        """
        stale_after = self.stale_after if stale_after is None else stale_after
        ending = _json(error or stale_error())
        channel = self.keys.stream_events(stream_id)
        args: list[str | int] = [int(stale_after * 1000), ending, self.max_events, self.retention, channel]
        return bool(int(await self._close_stale(keys=self._all_keys(stream_id), args=args)))
