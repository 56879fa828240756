"""The answer stream format, against a real Redis: ids, ends, cancel, staleness and retention, read
as the gateway's SSE relay delivers it."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from collabry.cache.client import create_redis
from collabry.cache.redis_keys import Keys
from collabry.cache.streams import StreamEnded, StreamEvent, StreamExists, StreamReader, StreamWriter
from collabry.config import Settings
from collabry.devstack import components
from collabry.devstack.components import free_port
from collabry.realtime.stream_waker import StreamWaker
from tests.support.answer_stream import AnswerStreams, answer_streams
from tests.support.eventually import eventually
from tests.support.redis_monitor import commands_during


@pytest.fixture
async def redis(env: dict[str, str]) -> AsyncIterator[Redis]:
    client = Redis.from_url(env["COLLABRY_REDIS_URL"])
    yield client
    await client.aclose()


@pytest.fixture
async def streams(env: dict[str, str]) -> AsyncIterator[AnswerStreams]:
    """Streams as a gateway relays them."""
    async with answer_streams(env["COLLABRY_REDIS_URL"]) as relay:
        yield relay


def writer(redis: Redis, stream_id: str = "s1", **kw: object) -> StreamWriter:
    return StreamWriter(redis, stream_id, keys=Keys(), **kw)  # type: ignore[arg-type]


async def test_events_have_ids_1_2_3_and_end_once(redis: Redis, streams: AnswerStreams) -> None:
    w = writer(redis)
    await w.start(user_id="u1", session_id="sess", message_id="m1")
    assert await w.append("sources", {"sources": []}) == 2
    assert await w.append("token", {"text": "Hel"}) == 3
    assert await w.append("token", {"text": "lo"}) == 4
    assert await w.finish("done", {"finishReason": "stop", "usage": {}}) is True
    assert await w.finish("error", {"code": "x", "message": "y"}) is False
    with pytest.raises(StreamEnded):
        await w.append("token", {"text": "late"})

    reader = StreamReader(redis)
    events = await streams.events("s1")
    assert [(e.id, e.event) for e in events] == [(1, "meta"), (2, "sources"), (3, "token"), (4, "token"), (5, "done")]
    assert events[0].payload == {"streamId": "s1", "sessionId": "sess", "messageId": "m1"}
    assert events[2].sse() == b'id: 3\nevent: token\ndata: {"text":"Hel"}\n\n'
    # Resuming after id 3 gives the rest only.
    assert [e.id for e in await reader.read("s1", after=3)] == [4, 5]
    meta = await reader.meta("s1")
    assert meta is not None and meta.user_id == "u1" and meta.state == "done" and meta.last == 5


async def test_start_refuses_a_used_id(redis: Redis) -> None:
    await writer(redis).start(user_id="u", session_id="s", message_id="m")
    with pytest.raises(StreamExists):
        await writer(redis).start(user_id="u2", session_id="s", message_id="m")


async def test_retention_applies_after_the_end(redis: Redis) -> None:
    w = writer(redis, retention=30, running_ttl=3600)
    await w.start(user_id="u", session_id="s", message_id="m")
    assert 3500 < await redis.ttl("collabry:stream:s1") <= 3600
    await w.finish("done", {"finishReason": "stop"})
    for key in ("collabry:stream:s1", "collabry:stream-meta:s1"):
        assert 0 < await redis.ttl(key) <= 30


async def test_a_relay_waits_for_new_events(redis: Redis, streams: AnswerStreams) -> None:
    w = writer(redis)
    await w.start(user_id="u", session_id="s", message_id="m")
    got: list[int] = []

    async def consume() -> None:
        got.extend(event.id for event in await streams.events("s1", after=1))

    task = asyncio.create_task(consume())
    await w.append("token", {"text": "a"})
    await w.finish("done", {"finishReason": "stop"})
    await asyncio.wait_for(task, 5)
    assert got == [2, 3]


async def subscribers(redis: Redis, stream_id: str) -> int:
    [(_channel, count)] = await redis.pubsub_numsub(Keys().stream_events(stream_id))
    return int(count)


@pytest.fixture
async def waker(env: dict[str, str]) -> AsyncIterator[StreamWaker]:
    """A gateway process's stream waker, used directly."""
    waker = StreamWaker(env["COLLABRY_REDIS_URL"], Keys())
    yield waker
    await waker.close()


async def started(redis: Redis) -> StreamWriter:
    w = writer(redis)
    await w.start(user_id="u", session_id="s", message_id="m")
    return w


async def test_relays_of_one_stream_share_one_subscription_which_ends_with_them(
    redis: Redis, waker: StreamWaker
) -> None:
    w = await started(redis)
    async with waker.subscribe("s1") as one, waker.subscribe("s1") as two:
        assert await one.wait(5) and await two.wait(5)  # confirmed
        assert one.take(1) is None and two.take(1) is None  # each relay reads the stream once
        assert await subscribers(redis, "s1") == 1
        await w.append("token", {"text": "a"})
        assert await one.wait(5) and await two.wait(5)
        assert [e.id for e in one.take(1)] == [e.id for e in two.take(1)] == [2]
    await eventually(lambda: _no_subscribers(redis, "s1"), 5, "the subscription to end with its relays")


async def test_a_foreign_message_on_a_streams_channel_makes_its_relays_read_and_nothing_else(
    redis: Redis, waker: StreamWaker
) -> None:
    w = await started(redis)
    async with waker.subscribe("s1") as sub:
        assert await sub.wait(5)  # confirmed
        assert sub.take(1) is None  # the relay's first read
        await redis.publish(Keys().stream_events("s1"), b"\xff not an event")
        assert await sub.wait(5)  # woken to read the stream itself
        assert sub.take(1) is None
        await w.append("token", {"text": "a"})  # the waker still hands events over
        assert await sub.wait(5)
        assert [e.id for e in sub.take(1)] == [2]


async def test_a_stream_followed_before_it_starts_reaches_its_relay_whole_without_a_read(
    redis: Redis, waker: StreamWaker
) -> None:
    async with waker.subscribe("s1") as sub:
        assert await waker.wait_confirmed(sub, 5)
        w = await started(redis)  # event 1, meta
        await w.append("token", {"text": "a"})
        await w.finish("done", {"finishReason": "stop"})
        taken: list[StreamEvent] = []
        while not (taken and taken[-1].is_end):
            assert await sub.wait(5)
            handed = sub.take(taken[-1].id if taken else 0)
            assert handed is not None, "the relay was sent to read the stream"
            taken += handed
    assert [(e.id, e.event) for e in taken] == [(1, "meta"), (2, "token"), (3, "done")]


async def test_streams_left_together_are_unsubscribed_in_one_command(
    redis: Redis, waker: StreamWaker, env: dict[str, str]
) -> None:
    async def follow_and_leave() -> None:
        async with waker.subscribe("s1") as one, waker.subscribe("s2") as two:
            assert await one.wait(5) and await two.wait(5)
        await waker.unsubscribed()

    _, seen = await commands_during(env["COLLABRY_REDIS_URL"], follow_and_leave)
    unsubscribes = [entry["command"] for entry in seen if entry["command"].startswith("UNSUBSCRIBE")]
    assert len(unsubscribes) == 1 and "stream-events:s1" in unsubscribes[0] and "stream-events:s2" in unsubscribes[0]
    assert await subscribers(redis, "s1") == await subscribers(redis, "s2") == 0


async def test_a_stream_followed_again_before_its_unsubscribe_went_out_stays_subscribed(
    redis: Redis, waker: StreamWaker
) -> None:
    w = await started(redis)
    async with waker.subscribe("s1") as sub:
        assert await sub.wait(5)
    async with waker.subscribe("s1") as sub:  # within the window: the unsubscribe is still queued
        assert await sub.wait(5)
        assert sub.take(1) is None  # the relay's first read
        await waker.unsubscribed()
        assert await subscribers(redis, "s1") == 1
        await w.append("token", {"text": "a"})
        assert await sub.wait(5)
        assert [e.id for e in sub.take(1)] == [2]


async def test_a_relay_that_joined_a_failed_subscription_gets_its_events_once_redis_is_back(
    tmp_path: Path,
) -> None:
    """Two relays follow one stream while Redis is down: the first one's subscribe fails (its
    client comes back later with Last-Event-ID), the second waits on that same subscription, which
    must be made for it when Redis is back instead of being left to quiet-period reads."""
    port = free_port()
    waker = StreamWaker(f"redis://127.0.0.1:{port}/0", Keys())
    joined, confirmed = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with waker.subscribe("s1"):
            pass

    async def second() -> list[int]:
        async with waker.subscribe("s1") as sub:
            joined.set()
            assert await sub.wait(20)  # the confirmation, once Redis is back
            assert sub.take(0) is None  # the relay's first read
            confirmed.set()
            assert await sub.wait(10)
            return [e.id for e in sub.take(0) or []]

    failing = asyncio.create_task(first())
    waiting = asyncio.create_task(second())
    await joined.wait()
    with pytest.raises(RedisConnectionError):
        await failing
    server = components.redis(port, tmp_path / "redis").start().wait_ready()
    redis = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        await asyncio.wait_for(confirmed.wait(), 30)
        await started(redis)  # event 1, meta
        assert await asyncio.wait_for(waiting, 10) == [1]
    finally:
        await redis.aclose()
        await waker.close()
        server.stop()


async def _no_subscribers(redis: Redis, stream_id: str) -> bool:
    return await subscribers(redis, stream_id) == 0


async def test_events_appended_while_the_relays_connection_was_down_arrive_without_waiting_for_a_quiet_period(
    redis: Redis, env: dict[str, str]
) -> None:
    """The relay's pub/sub connection is killed mid-answer and the whole rest of the answer is
    appended before the connection is back, so none of it reaches the relay as a message. The relay
    must deliver it all once its subscription is confirmed again, not after its quiet period (10 s
    here)."""
    url = env["COLLABRY_REDIS_URL"]

    async def kill_then_finish() -> None:
        # On a loop of its own, in a thread, while the relay's loop is held: the relay cannot
        # reconnect before the last event is written.
        client = Redis.from_url(url)
        try:
            assert await client.client_kill_filter(_type="pubsub") >= 1
            w = writer(client)
            w.last_id = 1
            for text in ("a", "b", "c"):
                await w.append("token", {"text": text})
            await w.finish("done", {"finishReason": "stop"})
        finally:
            await client.aclose()

    await writer(redis).start(user_id="u", session_id="s", message_id="m")
    async with answer_streams(url, quiet=60) as relay:
        meta_written = asyncio.Event()
        following = asyncio.create_task(relay.events("s1", arrived=lambda _event: meta_written.set()))
        await asyncio.wait_for(meta_written.wait(), 5)  # the relay is subscribed and has read
        started = time.monotonic()
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, kill_then_finish()).result()  # blocks this loop on purpose
        events = await asyncio.wait_for(following, 8)
    assert [e.id for e in events] == [1, 2, 3, 4, 5]
    assert time.monotonic() - started < 8  # the relay's first look of its own would be at 10 s


async def test_the_heartbeat_ends_with_its_block_even_when_a_cancel_is_lost(env: dict[str, str]) -> None:
    """On Python 3.11 the ``asyncio.wait_for`` that redis-py puts around each write (with a socket
    timeout, as the services' clients have) can lose a cancel that arrives as the write completes.
    The heartbeat loop outlives Redis errors by design, so a lost cancel used to leave it beating
    for ever, and the block that started it never ended. Hundreds of blocks ended at random points
    of a fast heartbeat: every loop must be gone when its block has ended."""
    client = create_redis(Settings(redis_url=env["COLLABRY_REDIS_URL"]))
    try:
        for i in range(300):
            w = writer(client, f"beat-{i}", heartbeat=0.0005)
            await w.start(user_id="u", session_id="s", message_id="m")
            async with w.heartbeating():
                await asyncio.sleep(random.uniform(0, 0.003))
            beating = [t for t in asyncio.all_tasks() if t.get_name().startswith("stream-heartbeat:") and not t.done()]
            assert beating == [], f"block {i} ended with its heartbeat still running"
    finally:
        await client.aclose()


async def test_cancel_flag_reaches_the_writer(redis: Redis) -> None:
    w = writer(redis, cancel_check_interval=0)
    await w.start(user_id="u", session_id="s", message_id="m")
    reader = StreamReader(redis)
    assert await w.cancel_requested() is False
    assert await reader.request_cancel("s1") is True
    assert await w.cancel_requested() is True
    await w.finish("done", {"finishReason": "cancelled"})
    assert await reader.request_cancel("s1") is False
    assert await reader.request_cancel("unknown") is False


async def test_stale_stream_is_closed_with_error_but_a_live_one_is_not(redis: Redis) -> None:
    reader = StreamReader(redis)
    live = writer(redis, "live", heartbeat=0.05)
    await live.start(user_id="u", session_id="s", message_id="m")
    dead = writer(redis, "dead")
    await dead.start(user_id="u", session_id="s", message_id="m")
    await dead.append("token", {"text": "half"})

    async with live.heartbeating():
        # Wait (bounded) until the dead writer's heartbeat is older than the threshold.
        await eventually(lambda: reader.close_stale("dead", stale_after=0.3), 5, "the dead stream to be closed")
        assert await reader.close_stale("live", stale_after=0.3) is False

    events = await reader.read("dead")
    assert [(e.id, e.event) for e in events] == [(1, "meta"), (2, "token"), (3, "error")]
    assert events[-1].payload["code"] == "stream_interrupted"
    # The writer that was presumed dead cannot add to the closed stream.
    with pytest.raises(StreamEnded):
        await dead.append("token", {"text": "zombie"})
    assert await reader.close_stale("dead", stale_after=0) is False


async def test_a_relay_closes_a_stale_stream(redis: Redis, env: dict[str, str]) -> None:
    dead = writer(redis, "gone")
    await dead.start(user_id="u", session_id="s", message_id="m")
    async with answer_streams(env["COLLABRY_REDIS_URL"], stale_after=0.2, quiet=0.125) as relay:
        real = await relay.events("gone")
    assert [e.event for e in real] == ["meta", "error"]


async def test_max_events_bounds_the_stream(redis: Redis) -> None:
    w = writer(redis, max_events=10)
    await w.start(user_id="u", session_id="s", message_id="m")
    for i in range(500):
        await w.append("token", {"text": str(i)})
    # Approximate trimming: bounded well below the number written.
    assert await redis.xlen("collabry:stream:s1") < 200
