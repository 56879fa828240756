"""Rate limiter: checks per second and Redis commands per check, ours (GCRA in one Lua call)
side by side with the `limits` library's Redis moving-window strategy, on the same Redis.

    .venv/bin/python tests/bench/bench_ratelimit.py [--checks 5000] [--concurrency 1,32] [--reps 3]

Prints one row per limiter and concurrency: checks per second, network round trips per check
(counted on the client's connections: each write of one or more commands to the socket is one),
Redis commands executed per check (Redis' own counter, including those inside scripts), the
wall time per check and the part of it Redis spent executing the check (``INFO commandstats``), then
a bare ``PING`` from the same client as the floor, and the medians with the ratios. Last, the
same check and PING from one sequential C client (``redis-benchmark``): the part of a lone
caller's cost that is Redis' own.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Connection, Redis

from collabry.cache.ratelimit import RateLimiter
from collabry.config import Rule, Settings
from collabry.devstack import components


class CountingConnection(Connection):
    """Counts writes to the socket: one per round trip (a pipeline is one write)."""

    sent = 0

    async def send_packed_command(self, command, check_health=True):  # type: ignore[override]
        CountingConnection.sent += 1
        return await super().send_packed_command(command, check_health)


async def commands(redis: Redis) -> int:
    info = await redis.info("stats")
    return int(info["total_commands_processed"])


async def server_usec(redis: Redis) -> float:
    """Microseconds Redis spent executing the checks' top-level commands (a script's inner
    commands are part of its EVALSHA's time)."""
    stats = await redis.info("commandstats")
    return sum(float(stats[f"cmdstat_{name}"]["usec"]) for name in ("evalsha", "ping") if f"cmdstat_{name}" in stats)


async def run(name: str, check, redis: Redis, checks: int, concurrency: int) -> float:
    for i in range(50):  # warm-up: script load, connection pool
        await check(i)
    await redis.config_resetstat()
    before = await commands(redis)
    sent_before = CountingConnection.sent
    per_task = checks // concurrency

    async def worker(w: int) -> None:
        for i in range(per_task):
            await check(w * per_task + i)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    done = per_task * concurrency
    trips = CountingConnection.sent - sent_before
    used = await commands(redis) - before - 1  # minus the INFO call itself
    in_redis = await server_usec(redis) / done
    print(f"{name:<30} {concurrency:>5} {done / elapsed:>10,.0f} {trips / done:>12.2f} {used / done:>10.2f}"
          f" {elapsed / done * 1e6:>9.0f} {in_redis:>9.1f}", flush=True)
    return done / elapsed


def c_client_rate(port: int, command: list[str], requests: int = 20000) -> float:
    """Requests per second of one sequential C client (``redis-benchmark -c 1``)."""
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", "1", "-n", str(requests), "-q", *command],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(re.findall(r"([0-9.]+) requests per second", out)[-1])


def c_client_floor(port: int, sha: str, reps: int) -> None:
    """The same check and PING from a C client: what Redis itself makes a lone caller pay for the
    script, without the Python client's packing and parsing."""
    if shutil.which("redis-benchmark") is None:
        print("\n(redis-benchmark not installed: no C-client comparison)")
        return
    check = ["EVALSHA", sha, "1", "collabry:rl:bench:k1", "0.06", "1000000", "1", "1"]
    rates: dict[str, list[float]] = {"ping": [], "check": []}
    for _rep in range(reps):
        rates["ping"].append(c_client_rate(port, ["PING"]))
        rates["check"].append(c_client_rate(port, check))
    ping, ours = statistics.median(rates["ping"]), statistics.median(rates["check"])
    print(f"\none sequential C client (redis-benchmark -c 1), median of {reps}: PING {ping:,.0f}/s,"
          f" collabry GCRA EVALSHA {ours:,.0f}/s -> time per check {ping / ours:.2f}x a PING")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = components.free_port()
        server = components.redis(port, Path(tmp)).start().wait_ready()
        try:
            url = f"redis://127.0.0.1:{port}/0"
            # As the gateway connects (cache/client.py): hiredis parser, no CLIENT SETINFO per connection.
            redis = Redis.from_url(url, connection_class=CountingConnection, driver_info=None)
            ours = RateLimiter(redis, Settings(redis_url=url))
            rule = Rule(1_000_000, 60)
            storage = RedisStorage(
                f"async+redis://127.0.0.1:{port}/0", implementation="redispy", connection_class=CountingConnection
            )
            moving = MovingWindowRateLimiter(storage)
            item = RateLimitItemPerMinute(1_000_000)
            print(f"{'limiter':<30} {'tasks':>5} {'checks/s':>10} {'trips/check':>12} {'cmds/check':>10}"
                  f" {'us/check':>9} {'us in Redis':>9}")
            rates: dict[tuple[str, int], list[float]] = {}
            candidates = {
                "collabry GCRA (one EVALSHA)": lambda i: ours.hit("bench", f"k{i % 100}", rule),
                "limits moving-window": lambda i: moving.hit(item, f"k{i % 100}"),
                "bare PING (same client)": lambda i: redis.ping(),
            }
            concurrencies = [int(c) for c in args.concurrency.split(",")]
            for _rep in range(args.reps):  # interleaved: the shared CPU hits every row alike
                for conc in concurrencies:
                    for name, check in candidates.items():
                        rates.setdefault((name, conc), []).append(await run(name, check, redis, args.checks, conc))
            print(f"\nmedian of {args.reps} interleaved runs: checks/s, and ours against `limits` and a bare PING")
            for conc in concurrencies:
                med = {name: statistics.median(rates[(name, conc)]) for name in candidates}
                ours_rate, theirs_rate, ping_rate = med.values()
                print(f"tasks {conc:>3}: collabry {ours_rate:>8,.0f}/s  limits {theirs_rate:>8,.0f}/s  PING"
                      f" {ping_rate:>8,.0f}/s  -> {ours_rate / theirs_rate:.2f}x limits,"
                      f" time per check {ping_rate / ours_rate:.2f}x a PING")
            # State kept per limited subject after 100 hits of a 100-per-minute rule.
            small_rule, small_item = Rule(100, 60), RateLimitItemPerMinute(100)
            for _ in range(100):
                await ours.hit("mem", "subject", small_rule)
                await moving.hit(small_item, "subject")
            ours_bytes = await redis.memory_usage(ours.keys.limit("mem", "subject"))
            theirs = [k async for k in redis.scan_iter(match="*subject*") if b"rl:mem" not in k]
            theirs_bytes = sum([await redis.memory_usage(k) or 0 for k in theirs])
            print(f"\nRedis memory per limited subject (100/min rule, 100 hits): collabry GCRA {ours_bytes} B,"
                  f" limits moving-window {theirs_bytes} B")
            await redis.aclose()
            c_client_floor(port, ours._hit.sha, args.reps)
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
