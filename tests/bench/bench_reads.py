"""Lists and counts on the appliance's database (FerretDB v2.5 on PostgreSQL + DocumentDB): the
driver's default cursor read side by side with ``collabry.db.reads`` (one batch, the ``count``
command), on the shapes the product's list pages use.

    .venv/bin/python tests/bench/bench_reads.py [--users 50] [--per-user 100] [--calls 60]

Prints the median and p90 of each read over ``--calls`` calls, in alternating blocks (so both see
the same machine load), and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from collabry.db.reads import all_of, count
from collabry.devstack import components

Read = Callable[[], Awaitable[Any]]


async def timed(read: Read) -> float:
    started = time.perf_counter()
    await read()
    return (time.perf_counter() - started) * 1000


async def compare(calls: int, default: Read, ours: Read, block: int = 10) -> tuple[list[float], list[float]]:
    """Alternating blocks of ``block`` calls of each: the cost of a cursor's end (FerretDB opens a
    new PostgreSQL connection) falls on the next command of the same connection, so calls one after
    the other, not interleaved one by one, show what a method costs."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(3):  # warm both
        await default()
        await ours()
    for _ in range(max(1, calls // block)):
        for _ in range(block):
            a.append(await timed(default))
        for _ in range(block):
            b.append(await timed(ours))
    return a, b


def p90(xs: list[float]) -> float:
    return sorted(xs)[int(len(xs) * 0.9) - 1]


async def run(port: int, users: int, per_user: int, calls: int) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(f"mongodb://127.0.0.1:{port}/", tz_aware=True)
    coll = client["bench"]["notifications"]
    await coll.create_index([("user_id", 1), ("created_at", -1)], name="user_recent")
    await coll.create_index([("user_id", 1), ("read", 1)], name="user_read")
    docs = [
        {"user_id": f"u{u}", "created_at": n, "read": n % 3 == 0, "kind": "task_due_soon", "text": "x" * 200}
        for u in range(users) for n in range(per_user)
    ]  # fmt: skip
    await coll.insert_many(docs)
    sort = [("created_at", -1)]
    where = {"user_id": "u7"}
    unread = {"user_id": "u7", "read": False}
    cases: list[tuple[str, Read, Read]] = [
        ("sorted list (a page of 50)",
         lambda: coll.find(where, sort=sort, limit=50).to_list(None),
         lambda: all_of(coll, where, sort=sort, at_most=50)),
        (f"sorted list (all {per_user})",
         lambda: coll.find(where, sort=sort).to_list(None),
         lambda: all_of(coll, where, sort=sort)),
        ("unsorted list",
         lambda: coll.find(where).to_list(None),
         lambda: all_of(coll, where)),
        ("count",
         lambda: coll.count_documents(unread),
         lambda: count(coll, unread)),
    ]  # fmt: skip
    print(f"{users} users x {per_user} documents; {calls} calls each, in alternating blocks of 10")
    print(f"{'read':<28} {'cursor p50':>11} {'p90':>7} {'one batch p50':>14} {'p90':>7} {'ratio':>7}")
    for name, default, ours in cases:
        a, b = await compare(calls, default, ours)
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{name:<28} {ma:>11.2f} {p90(a):>7.2f} {mb:>14.2f} {p90(b):>7.2f} {ma / mb:>6.1f}x")
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--per-user", type=int, default=100)
    parser.add_argument("--calls", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="collabry-bench-") as tmp:
        port = components.free_port()
        database = components.start_database(Path(tmp), port)
        try:
            asyncio.run(run(port, args.users, args.per_user, args.calls))
        finally:
            database.stop()


if __name__ == "__main__":
    main()
