"""Several engine processes over one database: catch-up by sequence, snapshots, restarts, crashes."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from collabry.engine.index.snapshot import read_header, snapshot_path
from tests.support.answer_stream import AnswerStreams, answer_streams
from tests.support.engine_fixtures import EngineHandle, Seed
from tests.support.fake_openai import Reply

from .conftest import ALGORITHMS, PHOTOSYNTHESIS, REVOLUTION, Api

pytestmark = pytest.mark.slow


@pytest.fixture
async def http() -> AsyncIterator[Callable[..., Api]]:
    """An ``Api`` over real HTTP for an engine process."""
    sessions: list[aiohttp.ClientSession] = []

    def make(handle: EngineHandle, seed: Seed) -> Api:
        session = aiohttp.ClientSession(base_url=handle.url)
        sessions.append(session)
        return Api(session, handle.headers, seed)

    yield make
    for session in sessions:
        await session.close()


def ids_and_scores(results: list[dict[str, Any]]) -> list[tuple[str, float]]:
    return [(r["chunkId"], r["score"]) for r in results]


async def test_two_engines_converge_through_the_database(
    start_engine: Callable[..., EngineHandle], http: Callable[..., Api], seed: Seed
) -> None:
    a = http(start_engine(name="a"), seed)
    b = http(start_engine(name="b"), seed)
    user = await seed.user()
    notebook = await seed.notebook(user)

    bio = await a.add_text(user, notebook, PHOTOSYNTHESIS, "Biology")
    # B never saw this user: it loads the index from the database.
    assert (await b.retrieve(user, "chloroplasts"))[0]["sourceId"] == bio
    # A now has the user cached; an ingestion through B reaches it by catch-up.
    assert (await a.retrieve(user, "chloroplasts"))[0]["sourceId"] == bio
    history = await b.add_text(user, notebook, REVOLUTION, "History")
    assert (await a.retrieve(user, "storming of the Bastille"))[0]["sourceId"] == history
    # A delete through A disappears from B's cached index.
    await seed.db.sources.update_one({"_id": history}, {"$set": {"deleted_at": "now"}})
    await a.delete(history, user)
    await seed.db.sources.update_one({"_id": history}, {"$set": {"deleted_at": None}})  # only the index decides now
    assert history not in {r["sourceId"] for r in await b.retrieve(user, "storming of the Bastille", k=20)}
    same = [await x.retrieve(user, "light reactions", k=5) for x in (a, b)]
    assert ids_and_scores(same[0]) == ids_and_scores(same[1])


async def test_snapshot_and_restart_give_identical_results(
    start_engine: Callable[..., EngineHandle], http: Callable[..., Api], seed: Seed, env: dict[str, str]
) -> None:
    first = start_engine(name="snap")
    api = http(first, seed)
    user = await seed.user()
    notebook = await seed.notebook(user)
    for title, text in (("Biology", PHOTOSYNTHESIS), ("History", REVOLUTION), ("Algorithms", ALGORITHMS)):
        await api.add_text(user, notebook, text, title)
    queries = ["photosynthesis", "Napoleon", "hash table lookups"]
    before = [ids_and_scores(await api.retrieve(user, q, k=5)) for q in queries]

    assert first.process.stop(timeout=30) == 0  # SIGTERM: drain, then snapshot dirty indexes
    path = snapshot_path(first.state_dir, user)
    header = read_header(path)
    state = await seed.db.index_state.find_one({"_id": user})
    assert header["seq"] == state["seq"] and header["rows"] == await seed.db.chunks.count_documents({"user_id": user})

    again = http(start_engine(name="snap2", state_dir=first.state_dir), seed)
    after = [ids_and_scores(await again.retrieve(user, q, k=5)) for q in queries]
    assert after == before

    verify = await _cli(env, first.state_dir, "index", "verify")
    assert verify.returncode == 0 and f"OK    {user}" in verify.stdout, verify.stdout + verify.stderr

    # A damaged snapshot is reported, ignored by the engine, and rebuilt by `index rebuild`.
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    verify = await _cli(env, first.state_dir, "index", "verify")
    assert verify.returncode == 1 and "checksum" in verify.stdout
    third = http(start_engine(name="snap3", state_dir=first.state_dir), seed)
    assert [ids_and_scores(await third.retrieve(user, q, k=5)) for q in queries] == before
    rebuild = await _cli(env, first.state_dir, "index", "rebuild", "--user", user)
    assert rebuild.returncode == 0 and "vectors from 3 sources" in rebuild.stdout, rebuild.stdout + rebuild.stderr
    assert (await _cli(env, first.state_dir, "index", "verify")).returncode == 0


async def _cli(env: dict[str, str], state_dir: Any, *args: str) -> subprocess.CompletedProcess[str]:
    run_env = {**os.environ, **env, "COLLABRY_STATE_DIR": str(state_dir), "COLLABRY_LOG_LEVEL": "warning"}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "collabry.cli", *args],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def answer_under_way(handle: EngineHandle, api: Api, seed: Seed, streams: AnswerStreams, reply: Reply) -> str:
    """Start an answer (``reply`` is the model's) on ``handle``'s engine; its stream id once the
    first token has been relayed."""
    user = await seed.user()
    notebook = await seed.notebook(user)
    await api.add_text(user, notebook, PHOTOSYNTHESIS)
    handle.fake_llm.push(reply)
    stream_id = "s" + secrets.token_hex(8)
    resp = await api.client.post(
        "/internal/chat", headers=api.headers, json={"userId": user, "message": "Explain", "streamId": stream_id}
    )
    assert resp.status == 202
    await streams.events(stream_id, until=lambda event: event.event == "token")
    return stream_id


async def test_engine_killed_mid_answer_leaves_a_stream_that_is_closed_with_error(
    start_engine: Callable[..., EngineHandle], http: Callable[..., Api], seed: Seed, env: dict[str, str]
) -> None:
    handle = start_engine(name="crash")
    async with answer_streams(env["COLLABRY_REDIS_URL"], stale_after=1) as streams:
        slow = Reply(text="slow " * 200, delay=0.1)
        stream_id = await answer_under_way(handle, http(handle, seed), seed, streams, slow)
        handle.process.send(signal.SIGKILL)
        await asyncio.to_thread(handle.process.proc.wait, 10)  # type: ignore[union-attr]
        events = await streams.events(stream_id)
    assert events[-1].event == "error" and events[-1].payload["code"] == "stream_interrupted"
    assert [e.id for e in events] == sorted({e.id for e in events})


async def test_engine_stopping_mid_answer_ends_the_stream_with_error(
    start_engine: Callable[..., EngineHandle], http: Callable[..., Api], seed: Seed, env: dict[str, str]
) -> None:
    handle = start_engine({"COLLABRY_DRAIN_TIMEOUT": "1"}, name="drain")
    async with answer_streams(env["COLLABRY_REDIS_URL"]) as streams:
        slow = Reply(text="slow " * 500, delay=0.1)
        stream_id = await answer_under_way(handle, http(handle, seed), seed, streams, slow)
        assert await asyncio.to_thread(handle.process.stop, 30) == 0
        events = await streams.events(stream_id)
    assert events[-1].event == "error" and events[-1].payload["code"] == "engine_restarting"


async def test_vectors_of_another_model_are_refused_until_rebuilt(
    start_engine: Callable[..., EngineHandle], http: Callable[..., Api], seed: Seed, env: dict[str, str]
) -> None:
    handle = start_engine(name="model")
    api = http(handle, seed)
    user = await seed.user()
    notebook = await seed.notebook(user)
    bio = await api.add_text(user, notebook, PHOTOSYNTHESIS, "Biology")
    await api.add_text(user, notebook, REVOLUTION, "History")
    # As if these vectors had been made by another embedding model.
    await seed.db.chunks.update_many({"user_id": user}, {"$set": {"model": "old-model", "dim": 384}})
    await seed.db.index_state.update_one({"_id": user}, {"$set": {"model": "old-model"}})
    resp = await api.client.post("/internal/retrieve", headers=api.headers, json={"userId": user, "query": "x"})
    body = await resp.json()
    assert resp.status == 409 and body["error"]["code"] == "index_model_mismatch"
    assert f"collabry index rebuild --user {user}" in body["error"]["message"]
    # New uploads are refused too, rather than mixing vectors.
    other = await seed.source(user, notebook, "New")
    await api.ingest_text(other, user, notebook, ALGORITHMS)
    failed = await seed.wait_status(other)
    assert failed["status"] == "failed" and "index rebuild" in failed["error"]

    rebuild = await _cli(env, handle.state_dir, "index", "rebuild", "--user", user)
    assert rebuild.returncode == 0, rebuild.stdout + rebuild.stderr
    assert "re-embedding" in rebuild.stdout and "vectors from 2 sources" in rebuild.stdout
    models = await seed.db.chunks.distinct("model", {"user_id": user})
    assert models == ["all-MiniLM-L6-v2-int8"]
    assert (await api.retrieve(user, "Where does photosynthesis take place?"))[0]["sourceId"] == bio
