"""AI answers as resumable SSE: nginx, two gateway replicas, the engine and the OpenAI-protocol stand-in."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time

import aiohttp
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from collabry.cache.redis_keys import Keys
from collabry.cache.streams import StreamWriter
from collabry.cache.users import UserCache, registered
from collabry.config import Settings
from collabry.db.usage import DailyUsage
from collabry.domain import billing, usage
from tests.support.eventually import eventually
from tests.support.fake_openai import Reply
from tests.support.redis_monitor import commands_during

from .conftest import REPLICA_ENV
from .sse import read_sse, sse_headers
from .support import account

pytestmark = pytest.mark.slow

WORDS = "Photosynthesis turns light water and carbon dioxide into sugar and oxygen in the chloroplasts"


@pytest.fixture
def cluster_env(engine):
    return {**REPLICA_ENV, "COLLABRY_ENGINE_URL": engine.url, "COLLABRY_SSE_HEARTBEAT": "1",
            "COLLABRY_STREAM_STALE_AFTER": "4"}


async def ask(http: aiohttp.ClientSession, base: str, token: str, message: str = "What is photosynthesis?"):
    return await http.post(f"{base}/api/ai/chat", json={"message": message}, headers=sse_headers(token))


def expected_tokens() -> list[str]:
    words = WORDS.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


async def test_tokens_arrive_incrementally_through_nginx(cluster, engine):
    user = await account(cluster.url)
    engine.fake_llm.push(Reply(text=WORDS, delay=0.15))
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        resp = await ask(http, cluster.url, user.token)
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert resp.headers["Cache-Control"] == "no-cache"
        read = await read_sse(resp)
    names = [e.event for e in read.events]
    assert names[0] == "meta" and names[1] == "sources" and names[-1] == "done"
    assert [e.id for e in read.events] == list(range(1, len(read.events) + 1))
    tokens = [e for e in read.events if e.event == "token"]
    assert [t.data["text"] for t in tokens] == expected_tokens()
    assert read.events[-1].data["finishReason"] == "stop"
    # Incremental: tokens arrive spread over the generation time, not in one burst at the end.
    gaps = [b.at - a.at for a, b in itertools.pairwise(tokens)]
    assert tokens[-1].at - tokens[0].at >= 0.15 * (len(tokens) - 1) * 0.8
    assert sorted(gaps)[len(gaps) // 2] >= 0.075, gaps  # the typical gap is the model's pace (0.15 s)
    assert tokens[0].at - started < 1.5


async def test_each_event_reaches_the_relay_as_one_message_and_is_not_read_again(cluster, engine, infra):
    """The script that appends an event also publishes it on the stream's channel; the replica that
    relays the answer subscribed once, before it asked the engine to start, and writes what it is
    handed: it never reads the stream (it would after a quiet period, or when it fell behind), and
    nothing blocks in Redis on the answer's behalf. Watched with Redis' MONITOR."""
    user = await account(cluster.url)
    engine.fake_llm.push(Reply(text=WORDS, delay=0.1))  # every token a separate message

    async def answer():
        async with aiohttp.ClientSession() as http:
            return await read_sse(await ask(http, cluster.url, user.token))

    read, seen = await commands_during(infra.redis_url, answer)
    commands = [entry["command"] for entry in seen]
    assert [t.data["text"] for t in read.events if t.event == "token"] == expected_tokens()
    stream_id = read.events[0].data["streamId"]
    about = [c for c in commands if stream_id in c]
    published = [c for c in about if c.startswith("PUBLISH")]
    assert [int(c.split()[2]) for c in published] == [e.id for e in read.events]  # each event once
    subscribes = [i for i, c in enumerate(about) if c.startswith("SUBSCRIBE")]
    assert len(subscribes) == 1
    assert subscribes[0] < about.index(published[0])  # subscribed before the answer began
    assert [c for c in about if c.startswith("XREAD")] == []


async def test_resume_on_the_other_replica_gets_exactly_the_rest(cluster, engine, mongo):
    user = await account(cluster.url)
    engine.fake_llm.push(Reply(text=WORDS, delay=0.1))
    a, b = cluster.replica_url(0), cluster.replica_url(1)
    async with aiohttp.ClientSession() as http:
        resp = await ask(http, a, user.token)
        first = await read_sse(resp, stop_after=5)
        resp.close()  # the client drops mid-answer
        stream_id = first.events[0].data["streamId"]
        last = first.events[-1].id
        async with http.get(f"{b}/api/ai/streams/{stream_id}", headers=sse_headers(user.token, last)) as resumed:
            assert resumed.status == 200
            rest = await read_sse(resumed)
        async with http.get(f"{b}/api/ai/streams/{stream_id}", headers=sse_headers(user.token)) as whole:
            everything = await read_sse(whole)
    got = first.events + rest.events
    assert [e.id for e in got] == [e.id for e in everything.events] == list(range(1, len(got) + 1))
    assert [(e.event, e.data) for e in got] == [(e.event, e.data) for e in everything.events]
    assert rest.events[0].id == last + 1 and rest.events[-1].event == "done"
    # dropping the connection did not cancel the answer: it finished and was saved
    assert rest.events[-1].data["finishReason"] == "stop"
    meta = first.events[0].data
    await eventually(lambda: mongo["ai_messages"].find_one({"_id": meta["messageId"]}) is not None,
                     what="the saved answer")
    saved = mongo["ai_messages"].find_one({"_id": meta["messageId"]})
    assert saved["content"] == WORDS and saved["role"] == "assistant"


async def test_resume_after_kill_9_of_the_serving_replica(cluster, engine):
    user = await account(cluster.url)
    engine.fake_llm.push(Reply(text=WORDS, delay=0.1))
    a, b = cluster.replica_url(0), cluster.replica_url(1)
    async with aiohttp.ClientSession() as http:
        resp = await ask(http, a, user.token)
        first = await read_sse(resp, stop_after=4)
        cluster.replicas[0].send(signal.SIGKILL)
        tail = await read_sse(resp)  # whatever was in flight, then the broken connection
        assert tail.ended
        seen = first.events + tail.events
        stream_id = seen[0].data["streamId"]
        async with http.get(f"{b}/api/ai/streams/{stream_id}",
                            headers=sse_headers(user.token, seen[-1].id)) as resumed:
            rest = await read_sse(resumed)
    got = seen + rest.events
    assert [e.id for e in got] == list(range(1, len(got) + 1))  # no gap, no duplicate
    assert [e.data["text"] for e in got if e.event == "token"] == expected_tokens()
    assert got[-1].event == "done" and got[-1].data["finishReason"] == "stop"


async def test_cancel_ends_the_stream_with_cancelled(cluster, engine):
    user = await account(cluster.url)
    engine.fake_llm.push(Reply(text=" ".join(["word"] * 60), delay=0.1))
    async with aiohttp.ClientSession() as http:
        resp = await ask(http, cluster.url, user.token)
        first = await read_sse(resp, stop_after=4)
        stream_id = first.events[0].data["streamId"]
        async with http.post(f"{cluster.url}/api/ai/streams/{stream_id}/cancel", headers=user.headers) as c:
            assert c.status == 202
            assert (await c.json()) == {"streamId": stream_id, "cancelling": True}
        rest = await read_sse(resp)
    end = rest.events[-1]
    assert end.event == "done" and end.data["finishReason"] == "cancelled"
    assert sum(e.event == "token" for e in first.events + rest.events) < 60


async def test_quota_exceeded_is_429_before_any_stream(cluster, engine, infra, db_name):
    user = await account(cluster.url)
    client = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    try:
        for _ in range(20):  # the free plan's daily AI answers
            assert await usage.consume(client[db_name], user.id, "ai", 20)
    finally:
        await client.close()
    async with aiohttp.ClientSession() as http:
        resp = await ask(http, cluster.url, user.token)
        assert resp.status == 429
        assert (await resp.json())["error"]["code"] == "quota_exceeded"
    assert engine.fake_llm.chat_requests == []  # nothing was generated


async def test_a_plan_upgrade_applies_to_the_next_ai_request(cluster, engine, infra, db_name):
    """The AI limit comes from the cached public user, which every plan change drops: no waiting
    for a copy to expire on any replica (the test process registers its Redis client, as the
    worker does)."""
    user = await account(cluster.url)
    replicas = [f"http://127.0.0.1:{port}" for port in cluster.ports]
    client = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    redis = Redis.from_url(infra.redis_url)
    try:
        for _ in range(20):  # the free plan's daily AI answers
            assert await usage.consume(client[db_name], user.id, "ai", 20)
        async with aiohttp.ClientSession() as http:
            for replica in replicas:  # each has now seen the user on the free plan
                refused = await ask(http, replica, user.token)
                assert refused.status == 429
                assert (await refused.json())["error"]["code"] == "quota_exceeded"
            with registered(UserCache(redis, Settings())):
                await billing.set_user_plan(client[db_name], user.id, "pro")
            for replica in replicas:
                engine.fake_llm.push(Reply(text=WORDS))
                resp = await ask(http, replica, user.token)
                assert resp.status == 200, await resp.text()
                assert (await read_sse(resp)).events[-1].event == "done"
    finally:
        await redis.aclose()
        await client.close()


async def test_only_the_owner_sees_a_stream(cluster, engine):
    owner = await account(cluster.url)
    other = await account(cluster.url)
    engine.fake_llm.push(Reply(text="short answer"))
    async with aiohttp.ClientSession() as http:
        resp = await ask(http, cluster.url, owner.token)
        stream_id = (await read_sse(resp)).events[0].data["streamId"]
        for path, method in ((f"/api/ai/streams/{stream_id}", "GET"), (f"/api/ai/streams/{stream_id}/cancel", "POST"),
                             ("/api/ai/streams/no-such-stream", "GET"), ("/api/ai/streams/bad%20id!", "GET")):
            async with http.request(method, cluster.url + path, headers=sse_headers(other.token)) as r:
                assert r.status == 404, path
                assert (await r.json())["error"]["code"] == "not_found"
        async with http.get(f"{cluster.url}/api/ai/streams/{stream_id}") as r:
            assert r.status == 401
        async with http.get(f"{cluster.url}/api/ai/streams/{stream_id}",
                            headers={**sse_headers(owner.token), "Last-Event-ID": "x1"}) as r:
            assert r.status == 400
        # the owner can still read it, from any event on
        async with http.get(f"{cluster.url}/api/ai/streams/{stream_id}", headers=sse_headers(owner.token, 2)) as r:
            assert r.status == 200
            assert (await read_sse(r)).events[0].id == 3


async def test_heartbeats_while_the_model_is_silent(cluster, engine):
    user = await account(cluster.url)
    engine.fake_llm.push(Reply(text="late answer", first_delay=3.5))
    async with aiohttp.ClientSession() as http:
        resp = await ask(http, cluster.url, user.token)
        read = await read_sse(resp)
    first_token = next(e.at for e in read.events if e.event == "token")
    pings = [at for text, at in read.comments if text == ": ping" and at < first_token]
    assert len(pings) >= 2  # heartbeat period 1 s in this test; 15 s by default
    assert read.events[-1].event == "done"


async def test_sigterm_ends_streams_with_a_retry_hint_and_they_resume_elsewhere(cluster, engine):
    user = await account(cluster.url)
    engine.fake_llm.push(Reply(text=WORDS, delay=0.25))
    async with aiohttp.ClientSession() as http:
        resp = await ask(http, cluster.replica_url(0), user.token)
        first = await read_sse(resp, stop_after=3)
        stopping = time.monotonic()
        cluster.replicas[0].send(signal.SIGTERM)
        tail = await read_sse(resp)
        assert tail.ended and tail.retry is not None
        assert time.monotonic() - stopping < 3  # the relay does not hold the drain
        seen = first.events + tail.events
        assert seen[-1].event != "done"  # ended early, mid-answer
        stream_id = seen[0].data["streamId"]
        # a browser reconnects through nginx; the draining replica passes it on
        async with http.get(f"{cluster.url}/api/ai/streams/{stream_id}",
                            headers=sse_headers(user.token, seen[-1].id)) as resumed:
            assert resumed.status == 200
            rest = await read_sse(resumed)
    got = seen + rest.events
    assert [e.id for e in got] == list(range(1, len(got) + 1))
    assert [e.data["text"] for e in got if e.event == "token"] == expected_tokens()
    await eventually(lambda: not cluster.replicas[0].running, timeout=10, what="the replica to exit")
    assert cluster.replicas[0].proc.returncode == 0


async def test_a_stream_whose_writer_died_ends_with_an_error(cluster, infra):
    """An engine that crashed mid-answer stops beating; the relay ends the stream instead of hanging."""
    user = await account(cluster.url)
    redis = Redis.from_url(infra.redis_url)
    writer = StreamWriter(redis, "orphaned-answer", keys=Keys())
    await writer.start(user_id=user.id, session_id="s1", message_id="m1")
    await writer.append("token", {"text": "half an"})
    await redis.aclose()  # the writer is gone without an end event
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{cluster.url}/api/ai/streams/orphaned-answer", headers=sse_headers(user.token)) as r:
            read = await read_sse(r)
    assert [e.event for e in read.events] == ["meta", "token", "error"]
    assert read.events[-1].data["code"] == "stream_interrupted"
    assert 4 <= time.monotonic() - started < 12


async def test_concurrent_answers_at_the_quota_start_exactly_up_to_the_limit_and_are_persisted(
    cluster, engine, infra, db_name
):
    """The AI quota is metered in Redis (seeded from the database's 17) and written behind."""
    user = await account(cluster.url)
    client = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    try:
        for _ in range(17):  # of the free plan's 20 daily AI answers
            assert await usage.consume(client[db_name], user.id, "ai", 20)
        async with aiohttp.ClientSession() as http:
            responses = await asyncio.gather(*(ask(http, cluster.url, user.token) for _ in range(6)))
            statuses = sorted(resp.status for resp in responses)
            for resp in responses:
                if resp.status == 200:
                    assert (await read_sse(resp)).events[-1].event == "done"
                else:
                    assert (await resp.json())["error"]["code"] == "quota_exceeded"
                resp.release()
        assert statuses == [200, 200, 200, 429, 429, 429]

        async def persisted() -> bool:
            return await DailyUsage(client[db_name]).snapshot(user.id, usage.today(), "ai") == (20, 3)

        await eventually(persisted, 10, "the gateways' write-behind to store 20 units")
    finally:
        await client.close()
