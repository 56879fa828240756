"""Quota metering on the appliance's database (FerretDB v2 on PostgreSQL + DocumentDB): ours
(``collabry.domain.usage.consume``: the repository's single conditional update, with an upsert for a
day's first unit) side by side with the textbook single conditional update on a prepared counter
(``{n: {$lt: limit}}`` + ``$inc``), and what the AI quota runs now: ``usage.take_metered``, one
Redis script per check (the database is read once per counter to seed it, and written behind).

    .venv/bin/python tests/bench/bench_quota.py [--rounds 5] [--requests 50] [--limit 10] [--serial 300]

Prints, per method: how many of ``--requests`` concurrent consumptions against ``--limit`` succeeded
and the final counter (correct = exactly ``limit``), the wall time of that burst, and the latency
of one consumption with no contention (p50/p99 over ``--serial`` calls, a fresh counter per call so
neither method is ever at its limit).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from collabry.cache.quota import QuotaCounters
from collabry.cache.redis_keys import Keys
from collabry.devstack import components
from collabry.domain import usage

REDIS = "ours in Redis (usage.take_metered)"
QUOTA: QuotaCounters | None = None


async def conditional_update(db, key: str, limit: int) -> bool:
    result = await db["naive"].update_one({"_id": key, "n": {"$lt": limit}}, {"$inc": {"n": 1}})
    return result.modified_count == 1


def slug(method: str) -> str:
    return "".join(c for c in method if c.isalnum())[:24]


async def burst(db, method: str, key: str, requests: int, limit: int) -> tuple[int, int, float]:
    if method == "conditional update":
        await db["naive"].insert_one({"_id": key, "n": 0})
        call = lambda: conditional_update(db, key, limit)  # noqa: E731
    elif method == REDIS:
        assert QUOTA is not None
        call = lambda: usage.take_metered(db, QUOTA, key, "ai", limit)  # noqa: E731
    else:
        call = lambda: usage.consume(db, key, "ai", limit)  # noqa: E731
    started = time.perf_counter()
    results = await asyncio.gather(*(call() for _ in range(requests)))
    elapsed = time.perf_counter() - started
    if method == "conditional update":
        final = int((await db["naive"].find_one({"_id": key}))["n"])
    elif method == REDIS:
        assert QUOTA is not None
        final = await usage.used_metered(db, QUOTA, key, "ai")
    else:
        final = await usage.used(db, key, "ai")
    return sum(results), final, elapsed


async def serial(db, method: str, calls: int) -> list[float]:
    times = []
    for i in range(calls):
        key = f"serial-{slug(method)}-{i}"
        if method == "conditional update":
            await db["naive"].insert_one({"_id": key, "n": 0})
        elif method == REDIS:  # a counter Redis knows (as after the day's first request)
            assert QUOTA is not None
            await usage.take_metered(db, QUOTA, key, "ai", 10)
        started = time.perf_counter()
        if method == "conditional update":
            await conditional_update(db, key, 10)
        elif method == REDIS:
            assert QUOTA is not None
            await usage.take_metered(db, QUOTA, key, "ai", 10)
        else:
            await usage.consume(db, key, "ai", 10)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def main(args: argparse.Namespace, port: int, redis_url: str) -> None:
    global QUOTA
    redis = Redis.from_url(redis_url)
    QUOTA = QuotaCounters(redis, Keys())
    client: AsyncMongoClient = AsyncMongoClient(f"mongodb://127.0.0.1:{port}/", retryWrites=False, tz_aware=True)
    db = client["bench"]
    await db["usage"].create_index([("user_id", 1), ("date", 1), ("kind", 1), ("n", -1)])
    print(f"{args.requests} concurrent consumptions against a limit of {args.limit}, {args.rounds} rounds; "
          f"uncontended latency over {args.serial} calls")
    print(f"| method | successes per round (want {args.limit}) | final counter | burst ms (median) | p50 ms | p99 ms |")
    print("|---|---|---|---:|---:|---:|")
    for method in ("conditional update", "ours (usage.consume)", REDIS):
        successes, finals, bursts = [], [], []
        for r in range(args.rounds):
            ok, final, elapsed = await burst(db, method, f"{slug(method)}-{r}", args.requests, args.limit)
            successes.append(ok)
            finals.append(final)
            bursts.append(elapsed * 1000)
        lat = sorted(await serial(db, method, args.serial))
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(f"| {method} | {', '.join(map(str, successes))} | {', '.join(map(str, finals))} | "
              f"{statistics.median(bursts):.0f} | {statistics.median(lat):.2f} | {p99:.2f} |")
    await client.close()
    await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--serial", type=int, default=300)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port, redis_port = components.free_port(), components.free_port()
        database = components.start_database(Path(tmp), port)
        redis_server = components.redis(redis_port, Path(tmp) / "redis").start()
        try:
            redis_server.wait_ready()
            asyncio.run(main(arguments, port, f"redis://127.0.0.1:{redis_port}/0"))
        finally:
            redis_server.stop()
            database.stop()
