"""SSE delivery of AI answers: added time to first token, and open streams per gateway process.

    .venv/bin/python tests/bench/bench_sse.py ttft [--concurrency 1,50,200] [--rounds 3] [--plot docs/img/ttft.png]
    .venv/bin/python tests/bench/bench_sse.py streams [--streams 5000]

``ttft``: real Redis, FerretDB, engine (its model calls go to the OpenAI-protocol stand-in, in its
own process, first token after 100 ms), two gateway replicas behind the project's nginx rules.
Two paths, side by side; at N concurrent answers, a wave of N answers takes one path, then a
wave of N the other (alternating which goes first), so each path has N answers in flight alone:
- nginx + gateway: ``POST /api/ai/chat`` until the first ``token`` event (auth, rate limit, quota,
  engine call, relay);
- the peer: the engine's internal ``POST /internal/chat`` then reading the answer's Redis stream
  directly (``cache.streams.StreamReader``) until the first token.
Each level runs ``--rounds`` times; the table shows the median round. "added" is nginx + gateway
minus the direct reader (the goal: at most +3 ms p50 and +15 ms p99), "ratio" the quotient.
``--plot`` draws the added milliseconds against concurrent answers (p50 and p99). The last
columns say how much later each SSE answer's first token reached its client than a reader of the
Redis stream watching the same answer (the relay's own delay): every answer at 1, one in ten
above (that second reader is client work the direct path does not have). The very last column is
the CPU time nginx and both gateways used per answer through them (``/proc``, in 10 ms ticks, so
rough at 1 answer). ``--engine-core N`` runs
the engine alone on core N and everything else on the other cores.

``streams``: one gateway process; N answers held open (running, no new events) and N SSE clients
following them. Prints the process's RSS per open stream, then appends one token to every stream
and reports how long delivery to all clients takes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import aiohttp
from pymongo import AsyncMongoClient
from redis.asyncio import BlockingConnectionPool, Redis

from realtime_common import (  # isort: skip
    cpu_seconds, percentile, raise_fd_limit, rss_kib, stack, tree_cpu_seconds, user_token, wall,
)
from engine_common import infra  # type: ignore[import-not-found]  # isort: skip

from collabry.cache.redis_keys import Keys
from collabry.cache.streams import StreamReader, StreamWriter
from collabry.db.client import new_id
from collabry.devstack.components import free_port

ANSWER = "Light becomes sugar in the chloroplasts"
FAILED: list[str] = []  # answers refused by the gateway path (status and error code)


async def sse_events(resp: aiohttp.ClientResponse):  # type: ignore[no-untyped-def]
    fields: dict[str, str] = {}
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith(":") or line.startswith("retry:"):
            continue
        if line:
            name, _, value = line.partition(": ")
            fields[name] = value
        elif "event" in fields:
            yield fields["event"], json.loads(fields["data"]), wall()
            fields = {}


async def first_token_direct(reader: StreamReader, stream_id: str) -> float:
    """When the first token reached a reader blocked on the stream. The reader goes on to the end
    event, as the gateway path's client does, so neither path leaves the engine still busy with its
    answer when the next one starts."""
    after, first = 0, None
    while True:
        for event in await reader.read(stream_id, after, block_ms=1000):
            after = event.id
            if event.event == "token" and first is None:
                first = wall()
            if event.is_end:
                if first is None:
                    raise RuntimeError(f"stream {stream_id} ended without a token")
                return first


async def via_gateway(http: aiohttp.ClientSession, url: str, token: str, reader: StreamReader,
                      watch: bool = True) -> tuple[float, float]:
    """(time to first token, delay of that token behind a direct reader of the same stream; NaN
    when not ``watch``ed)."""
    started = wall()
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    watcher: asyncio.Task[float] | None = None
    ttft = delay = float("nan")
    async with http.post(f"{url}/api/ai/chat", json={"message": "How do plants make sugar?"}, headers=headers) as resp:
        if resp.status != 200:
            FAILED.append(f"{resp.status} {(await resp.json())['error']['code']}")
            return ttft, delay
        async for event, data, at in sse_events(resp):
            if event == "meta" and watch:
                watcher = asyncio.create_task(first_token_direct(reader, data["streamId"]))
            elif event == "token" and ttft != ttft:
                ttft = at - started
                if watcher is not None:
                    delay = at - await watcher
            elif event in ("done", "error"):
                break
    return ttft, delay


async def direct(http: aiohttp.ClientSession, engine_url: str, service_token: str, user_id: str,
                 reader: StreamReader) -> float:
    started = wall()
    stream_id = new_id()
    body = {"userId": user_id, "message": "How do plants make sugar?", "streamId": stream_id}
    async with http.post(f"{engine_url}/internal/chat", json=body,
                         headers={"Authorization": f"Bearer {service_token}"}) as resp:
        assert resp.status == 202, await resp.text()
    return await first_token_direct(reader, stream_id) - started


async def one_level(http: aiohttp.ClientSession, url: str, engine_url: str, service_token: str,
                    accounts: list[tuple[str, str]], reader: StreamReader, level: int, edge: list[int]
                    ) -> tuple[list[tuple[float, float]], list[float], float]:
    """At least 100 answers through each path, ``level`` at a time: a wave of ``level`` answers
    through one path, then a wave through the other (which goes first alternates), so each wave
    has the machine to itself and both see the same load. Also returns the CPU seconds that the
    ``edge`` processes (nginx, the gateways) used per answer through them."""
    via: list[tuple[float, float]] = []
    peer: list[float] = []
    edge_cpu = 0.0
    for wave in range(max(1, 100 // level)):
        async def through_gateway() -> None:
            nonlocal edge_cpu
            before = sum(tree_cpu_seconds(pid) for pid in edge)
            # The second reader that times the relay's delay is client work the direct path does not
            # have: under load only one answer in ten gets one.
            via.extend(await asyncio.gather(
                *(via_gateway(http, url, accounts[i][1], reader, watch=i % RELAY_SAMPLE == 0) for i in range(level))
            ))
            edge_cpu += sum(tree_cpu_seconds(pid) for pid in edge) - before

        async def directly() -> None:
            peer.extend(await asyncio.gather(
                *(direct(http, engine_url, service_token, accounts[i][0], reader) for i in range(level))
            ))

        for path in (through_gateway, directly) if wave % 2 == 0 else (directly, through_gateway):
            await path()
    return via, peer, edge_cpu / len(via)


RELAY_SAMPLE = 10  # at more than one answer at a time, one answer in this many is followed twice


def ms(values: list[float], p: float) -> str:
    return f"{percentile(values, p) * 1000:.1f}"


def pin(pid: int, cores: set[int]) -> None:
    """Every thread of ``pid`` onto ``cores`` (threads it starts later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cores)


async def ttft(levels: list[int], rounds: int = 3, plot: str | None = None, engine_core: int | None = None) -> None:
    if engine_core is not None:
        # The engine on a core of its own, everything else (this client, nginx, the gateways, Redis,
        # the database, the model stand-in: started below, they inherit it) on the others: what the
        # gateway adds when it does not compete with the engine's query embedding for a core.
        os.sched_setaffinity(0, os.sched_getaffinity(0) - {engine_core})
    with infra() as base, stack(base) as s:
        llm = s.fake_llm(first_delay=0.1, delay=0.01, text=ANSWER)
        engine_port = free_port()
        extra = {"COLLABRY_LLM_BASE_URL": f"http://127.0.0.1:{llm}/v1", "COLLABRY_ENGINE_URL":
                 f"http://127.0.0.1:{engine_port}"}
        engine = s.start("engine", ["engine", "--port", str(engine_port)], port=engine_port, extra=extra)
        if engine_core is not None:
            assert engine.proc is not None
            pin(engine.proc.pid, {engine_core})
            print(f"engine pinned to core {engine_core}; everything else to {sorted(os.sched_getaffinity(0))}")
        ports = s.gateways(2, extra=extra)
        public = s.nginx(ports)
        url = f"http://127.0.0.1:{public}"
        edge = [p.proc.pid for p in s.processes
                if p.proc is not None and (p.name == "nginx" or p.name.startswith("gateway"))]
        # One user per concurrent answer, as in real traffic (a user's quota is one counter).
        accounts = await asyncio.gather(*(user_token(url, f"Asker{i}") for i in range(max(levels))))
        # Each direct reader blocks on a connection of its own, as a reader without a relay would.
        redis = Redis.from_url(base.redis_url, max_connections=4 * max(levels) + 16)
        mongo: AsyncMongoClient = AsyncMongoClient(base.mongo_uri)
        await mongo["bench"].users.update_many({}, {"$set": {"plan": "pro"}})  # 2,000 answers a day each
        reader = StreamReader(redis, keys=Keys())
        service_token = (base.root / "secrets" / "service-token").read_text().strip()
        engine_url = f"http://127.0.0.1:{engine_port}"
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            for i in range(min(5, len(accounts))):  # warm-up: connections, scripts, the embedding model
                await via_gateway(http, url, accounts[i][1], reader)
                await direct(http, engine_url, service_token, accounts[i][0], reader)
            # Every user's first answer of the day: the gateway seeds the quota counter from the
            # database and caches the user. Measured below is a day's ordinary answer, not its first.
            for i in range(5, len(accounts), 10):
                await asyncio.gather(*(via_gateway(http, url, token, reader) for _, token in accounts[i:i + 10]))
            print(f"time to first token (ms): model's first token after 100 ms; {ANSWER.count(' ') + 1} tokens")
            print("| concurrent answers | nginx + gateway p50 | p99 | engine stream directly p50 | p99 "
                  "| added p50 | added p99 | ratio p50 | ratio p99 | relay delay of the first token p50 | p99 "
                  "| nginx + gateway CPU per answer, µs |")
            print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            added: dict[str, list[tuple[float, float]]] = {"added p50": [], "added p99": []}
            for level in levels:
                measured = []
                for _ in range(rounds):
                    via, peer, cpu = await one_level(http, url, engine_url, service_token, accounts, reader, level,
                                                     edge)
                    t_via = [v[0] for v in via if v[0] == v[0]]  # NaN: refused
                    delays = [v[1] for v in via if v[1] == v[1]]
                    measured.append((percentile(t_via, 50) - percentile(peer, 50), t_via, peer, delays, cpu))
                measured.sort(key=lambda m: m[0])
                _, t_via, peer, delays, cpu = measured[len(measured) // 2]  # the median round
                added50 = (percentile(t_via, 50) - percentile(peer, 50)) * 1000
                added99 = (percentile(t_via, 99) - percentile(peer, 99)) * 1000
                ratio50 = percentile(t_via, 50) / percentile(peer, 50)
                ratio99 = percentile(t_via, 99) / percentile(peer, 99)
                added["added p50"].append((level, added50))
                added["added p99"].append((level, added99))
                print(f"| {level} | {ms(t_via, 50)} | {ms(t_via, 99)} | {ms(peer, 50)} | {ms(peer, 99)} "
                      f"| {added50:+.1f} | {added99:+.1f} | {ratio50:.3f} | {ratio99:.3f} "
                      f"| {ms(delays, 50)} | {ms(delays, 99)} | {cpu * 1e6:.0f} |", flush=True)
                if FAILED:
                    print(f"  refused through the gateway at {level}: {len(FAILED)} ({', '.join(sorted(set(FAILED)))})")
                    FAILED.clear()
            if plot:
                from plot import plot_latency  # type: ignore[import-not-found]

                out = plot_latency(plot, "AI answers: time to first token added by nginx + gateway",
                                   "concurrent answers", added, y_label="added ms")
                print(f"plot: {out}")
        await redis.aclose()
        await mongo.close()


async def open_streams(count: int) -> None:
    hard = raise_fd_limit()
    with infra() as base, stack(base) as s:
        # Held streams stay "running" for the whole run: no stale-writer check may end them.
        port = s.gateways(1, extra={"COLLABRY_STREAM_STALE_AFTER": "3600"})[0]
        gateway = s.processes[-1]
        assert gateway.proc is not None
        url = f"http://127.0.0.1:{port}"
        user_id, token = await user_token(url)
        redis = Redis(connection_pool=BlockingConnectionPool.from_url(base.redis_url, max_connections=64))
        writers = []
        for i in range(count):
            w = StreamWriter(redis, new_id(), keys=Keys())
            await w.start(user_id=user_id, session_id="s", message_id=f"m{i}")
            writers.append(w)
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream", "Last-Event-ID": "1"}
        received: dict[int, float] = {}
        opened = 0
        all_open = asyncio.Event()

        async def follow(i: int, w: StreamWriter, http: aiohttp.ClientSession) -> None:
            nonlocal opened
            async with http.get(f"{url}/api/ai/streams/{w.stream_id}", headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                opened += 1
                if opened == count:
                    all_open.set()
                async for event, _data, at in sse_events(resp):
                    if event == "token":
                        received[i] = at
                    if event in ("done", "error"):
                        return

        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            # Baseline: the process with one stream open, after warm-up.
            warm = asyncio.create_task(follow(-1, writers[0], http))
            await asyncio.sleep(2)
            base_kib = rss_kib(gateway.proc.pid)
            started = time.monotonic()
            tasks = [asyncio.create_task(follow(i, w, http)) for i, w in enumerate(writers[1:], 1)]
            while not all_open.is_set():
                await asyncio.wait([*tasks[:1]], timeout=2)
                print(f"  {opened:,} open", flush=True)
                if any(t.done() and t.exception() for t in tasks):
                    raise next(t.exception() for t in tasks if t.done() and t.exception())
            open_seconds = time.monotonic() - started
            await asyncio.sleep(5)  # settle: every relay is now idle-waiting on Redis
            held_kib = rss_kib(gateway.proc.pid)
            per_stream = (held_kib - base_kib) * 1024 / (count - 1)
            print(f"| open SSE streams (one gateway process) | {count:,} | goal 5,000 |")
            print(f"| RSS with 1 stream / with {count:,} | {base_kib / 1024:.1f} MiB / {held_kib / 1024:.1f} MiB | |")
            print(f"| RSS per open stream | {per_stream / 1024:.1f} KiB | goal < 40 KB |")
            print(f"| time to open them all | {open_seconds:.1f} s | |")
            cpu_before = cpu_seconds(gateway.proc.pid)
            sent = wall()
            await asyncio.gather(*(w.append("token", {"text": "x"}) for w in writers))
            appended = wall() - sent
            deadline = time.monotonic() + 120
            while len(received) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            lat = [at - sent for at in received.values()]
            print(f"| one token to all {count:,} streams: delivered / p50 / p99 / last | {len(received):,} / "
                  f"{ms(lat, 50)} ms / {ms(lat, 99)} ms / {max(lat) * 1000:.0f} ms | appending them took "
                  f"{appended * 1000:.0f} ms |")
            print(f"| gateway CPU for that fan-out | {(cpu_seconds(gateway.proc.pid) - cpu_before) * 1000:.0f} ms "
                  f"({(cpu_seconds(gateway.proc.pid) - cpu_before) / count * 1e6:.0f} µs per stream) | |")
            idle_before = cpu_seconds(gateway.proc.pid)
            await asyncio.sleep(10)
            print(f"| gateway CPU while {count:,} streams wait quietly | "
                  f"{(cpu_seconds(gateway.proc.pid) - idle_before) / 10 * 100:.1f} % of a core | |")
            await asyncio.gather(*(w.finish("done", {"finishReason": "stop", "usage": {}}) for w in writers))
            await asyncio.wait_for(asyncio.gather(warm, *tasks), 120)
        await redis.aclose()
        print(f"(descriptor limit {hard})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=["ttft", "streams", "all"], nargs="?", default="all")
    parser.add_argument("--concurrency", default="1,50,200")
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plot", default=None, help="write the added-time plot here (e.g. docs/img/ttft.png)")
    parser.add_argument("--engine-core", type=int, default=None,
                        help="run the engine alone on this core and everything else on the others")
    args = parser.parse_args()
    if args.part in ("ttft", "all"):
        asyncio.run(ttft([int(x) for x in args.concurrency.split(",")], args.rounds, args.plot, args.engine_core))
    if args.part in ("streams", "all"):
        asyncio.run(open_streams(args.streams))


if __name__ == "__main__":
    main()
