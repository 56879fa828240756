"""The index log's head mirrored in Redis: replicas still see every finished commit before they
search, with Redis restarted (no data), with a writer in the middle of a commit, and with a mirror
that is ahead of the database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from collabry.cache.redis_keys import Keys
from collabry.db.client import new_id
from collabry.engine.index.heads import IndexHeads
from collabry.engine.index.state import IndexLog
from collabry.engine.index.store import INLINE_SEARCH_FLOATS, IndexStore
from tests.support.redis_monitor import commands_during

from .test_store import DIM, add_source, rows


@pytest.fixture
async def redis(infra: Any) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra.redis_url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture(params=["on the loop", "in a thread"])
def replica(request: pytest.FixtureRequest) -> Replica:
    """A replica's index store; short searches run on the loop with the head's read in flight,
    longer ones in a thread: both paths see the same heads."""
    inline = INLINE_SEARCH_FLOATS if request.param == "on the loop" else 0

    def make(db: Any, redis: Redis, state_dir: Path) -> IndexStore:
        return IndexStore(
            IndexLog(db, IndexHeads(redis, Keys())), state_dir, model="m", dim=DIM, inline_search_floats=inline
        )

    return make


Replica = Callable[[Any, Redis, Path], IndexStore]

Found = Callable[[IndexStore, str, str], Awaitable[bool]]


@pytest.fixture(params=["head read by the search", "head read first, as Retriever does"])
def found(request: pytest.FixtureRequest) -> Found:
    """Whether a search of ``store`` finds the user's ``source``, with the head learnt both ways: read
    by the search itself, in flight while it scans, or read before it and given (``Retriever``
    reads it while the query is embedded)."""
    head_first = request.param != "head read by the search"

    async def search(store: IndexStore, user: str, source: str) -> bool:
        head = await store.head(user) if head_first else None
        hits = await store.search(user, rows(1, 7)[0], {source}, 3, head=head)
        return bool(hits) and all(h.source_id == source for h in hits)

    return search


async def test_a_commit_on_one_replica_is_seen_by_the_next_search_on_another(
    db: Any, redis: Redis, replica: Replica, found: Found, tmp_path: Path
) -> None:
    a, b, user = replica(db, redis, tmp_path / "a"), replica(db, redis, tmp_path / "b"), new_id()
    first = await add_source(a.log, user, rows(20, 1))
    assert await found(b, user, first)
    second = await add_source(a.log, user, rows(20, 2))
    # The head in Redis is the database's, and b's next search replays the new source.
    assert await a.log.heads.get(user) == await a.log.head_in_database(user)  # type: ignore[union-attr]
    assert await found(b, user, second)
    assert (await b.current(user)).seq == (await a.log.head_in_database(user))[0]


async def test_after_a_redis_restart_readers_fall_back_to_the_database(
    db: Any, redis: Redis, replica: Replica, found: Found, infra: Any, tmp_path: Path
) -> None:
    a, b, user = replica(db, redis, tmp_path / "a"), replica(db, redis, tmp_path / "b"), new_id()
    assert await found(b, user, await add_source(a.log, user, rows(20, 1)))
    infra.restart_redis()  # no data kept: the mirrored heads are gone
    await redis.connection_pool.disconnect()
    assert await a.log.heads.get(user) is None  # type: ignore[union-attr]
    source = await add_source(a.log, user, rows(20, 2))
    assert await found(b, user, source)
    assert await b.log.heads.get(user) == await b.log.head_in_database(user)  # type: ignore[union-attr]


async def test_while_a_writer_is_committing_readers_ask_the_database(
    db: Any, redis: Redis, replica: Replica, found: Found, tmp_path: Path
) -> None:
    a, b, user = replica(db, redis, tmp_path / "a"), replica(db, redis, tmp_path / "b"), new_id()
    assert await found(b, user, await add_source(a.log, user, rows(20, 1)))
    heads = a.log.heads
    assert heads is not None
    async with heads.writing(user) as committed:
        # The commit is in the database but its writer has not updated Redis yet (or died here).
        plain = IndexLog(db)
        source = await add_source(plain, user, rows(20, 2))
        assert await heads.get(user) is None
        assert await found(b, user, source)
        committed.append(await plain.head_in_database(user))
    assert await heads.get(user) == await plain.head_in_database(user)


async def test_a_mirror_ahead_of_the_database_is_dropped(
    db: Any, redis: Redis, replica: Replica, found: Found, tmp_path: Path
) -> None:
    a, user = replica(db, redis, tmp_path / "a"), new_id()
    source = await add_source(a.log, user, rows(20, 1))
    assert await found(a, user, source)  # loaded: later searches check the mirrored head
    heads = a.log.heads
    assert heads is not None
    await heads.drop(user)
    await heads.seed(user, (99, "m", DIM))  # e.g. the database was restored to an earlier state
    assert await found(a, user, source)
    assert await heads.get(user) is None
    assert await a.log.head(user) == await a.log.head_in_database(user)
    assert await heads.get(user) == await a.log.head_in_database(user)


async def test_a_search_over_the_heads_read_leaves_the_connection_in_step(db: Any, redis: Redis) -> None:
    """``get_around`` writes the GET, runs the work, then reads the answer: work that fails in
    between must not leave that answer for the connection's next command."""
    heads, user = IndexHeads(redis, Keys()), new_id()
    await heads.seed(user, (3, "m", DIM))
    ran: list[int] = []

    def search() -> str:
        ran.append(1)
        return "hits"

    assert await heads.get_around(user, search) == ((3, "m", DIM), "hits")

    def failing() -> None:
        ran.append(2)
        raise ValueError("search failed")

    with pytest.raises(ValueError):
        await heads.get_around(user, failing)
    await redis.set("other", "value")
    assert await redis.get("other") == b"value"  # not the head's answer left over
    assert await heads.get(user) == (3, "m", DIM)
    assert ran == [1, 2]


async def test_with_redis_unreachable_the_search_still_runs_once(db: Any, tmp_path: Path) -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=1)
    heads, ran = IndexHeads(unreachable, Keys()), []

    def search() -> str:
        ran.append(1)
        return "hits"

    assert await heads.get_around(new_id(), search) == (None, "hits")
    assert ran == [1]
    await unreachable.aclose()


async def test_a_search_given_a_current_head_asks_redis_nothing(
    db: Any, redis: Redis, infra: Any, tmp_path: Path
) -> None:
    a, user = IndexStore(IndexLog(db, IndexHeads(redis, Keys())), tmp_path, model="m", dim=DIM), new_id()
    source = await add_source(a.log, user, rows(20, 1))
    assert await a.search(user, rows(1, 7)[0], {source}, 3)  # loaded and current
    head = await a.head(user)
    hits, commands = await commands_during(
        infra.redis_url, lambda: a.search(user, rows(1, 7)[0], {source}, 3, head=head)
    )
    assert [h.source_id for h in hits] == [source] * 3
    assert commands == []
    # Without a head, the same search reads it (the GET in flight while the index is scanned).
    assert await a.search(user, rows(1, 7)[0], {source}, 3)
