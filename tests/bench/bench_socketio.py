"""Socket.IO room broadcast latency across two gateway replicas with 1,000 connected clients.

    .venv/bin/python tests/bench/bench_socketio.py [--clients 1000] [--broadcasts 30]

Real Redis, FerretDB, two gateway replicas behind the project's nginx rules. The clients come from
source addresses 127.0.0.2 and up (several per address; nginx hashes the address, so they spread
over both replicas), connect over websocket (a minimal wire-protocol client, see ``Client``) and
all join one board. One client on replica A then
sends ``board:awareness`` events; every other client records when each arrived. Side by side:
receivers on the sender's replica (delivered in-process) and on the other replica (through the
Redis pub/sub channel of ``AsyncRedisManager``). All clients live in this one Python process, so
the figures include the time this process takes to take 1,000 messages off its sockets; one
broadcast per second, so each is delivered before the next.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import time
from typing import Any

import aiohttp
from pymongo import AsyncMongoClient

from realtime_common import percentile, raise_fd_limit, stack, user_token  # isort: skip
from engine_common import infra  # type: ignore[import-not-found]  # isort: skip

from collabry.db.client import new_id, utcnow

PER_ADDRESS = 4


def address(i: int) -> str:
    return f"127.0.{2 + i // 250}.{2 + i % 250}"


async def socket_counts(http: aiohttp.ClientSession, ports: list[int]) -> list[int]:
    out = []
    for port in ports:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            match = re.search(r"^collabry_socketio_clients (\S+)$", await resp.text(), re.M)
            out.append(int(float(match.group(1))) if match else 0)
    return out


class Client:
    """A minimal Socket.IO client speaking the wire protocol (Engine.IO 4 / Socket.IO 5 text frames)
    over one websocket: cheaper per message than python-socketio's client, so a thousand of them in
    one process measure the server rather than themselves. It answers pings and records arrivals."""

    def __init__(self, http: aiohttp.ClientSession, replica: int, arrivals: list[tuple[int, int, float]]) -> None:
        self.http = http
        self.replica = replica
        self.arrivals = arrivals
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.next_ack = 0
        self.reading: asyncio.Task[None] | None = None

    async def connect(self, url: str, token: str) -> None:
        self.ws = await self.http.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket")
        opened = await self.ws.receive_str()
        assert opened.startswith("0"), opened
        await self.ws.send_str("40" + json.dumps({"token": token}))
        connected = await self.ws.receive_str()
        assert connected.startswith("40"), connected
        self.reading = asyncio.create_task(self._read())

    async def call(self, event: str, data: Any) -> Any:
        assert self.ws is not None
        self.next_ack += 1
        future = self.acks[self.next_ack] = asyncio.get_running_loop().create_future()
        await self.ws.send_str(f"42{self.next_ack}" + json.dumps([event, data]))
        return (await asyncio.wait_for(future, 60))[0]

    async def emit(self, event: str, data: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str("42" + json.dumps([event, data]))

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            text = msg.data
            if text == "2":
                await self.ws.send_str("3")
            elif text.startswith('42["board:awareness"'):
                at = time.perf_counter()
                seq = int(base64.b64decode(json.loads(text[2:])[1]["update"]))
                self.arrivals.append((seq, self.replica, at))
            elif text.startswith("43"):
                ack_id, _, body = text[2:].partition("[")
                future = self.acks.pop(int(ack_id), None)
                if future is not None:
                    future.set_result(json.loads("[" + body))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reading is not None:
            await asyncio.gather(self.reading, return_exceptions=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=30)
    args = parser.parse_args()
    raise_fd_limit()
    with infra() as base, stack(base) as s:
        ports = s.gateways(2)
        public = s.nginx(ports)
        url = f"http://127.0.0.1:{public}"
        users = [await user_token(url, f"User{i}") for i in range(10)]
        mongo: AsyncMongoClient = AsyncMongoClient(base.mongo_uri)
        board = new_id()
        now = utcnow()
        await mongo["bench"].boards.insert_one({"_id": board, "owner_id": users[0][0], "title": "Bench",
                                                "created_at": now, "updated_at": now, "deleted_at": None,
                                                "archived_at": None})
        for user_id, _ in users[1:]:
            await mongo["bench"].board_members.insert_one({"_id": f"{board}:{user_id}", "board_id": board,
                                                           "user_id": user_id, "role": "editor", "created_at": now})
        await mongo.close()

        addresses = [address(i) for i in range(-(-args.clients // PER_ADDRESS))]
        sessions = {ip: aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(ip, 0), limit=0))
                    for ip in addresses}
        arrivals: list[tuple[int, int, float]] = []
        clients: list[Client] = []
        try:
            async with aiohttp.ClientSession() as probe:
                # nginx sends every connection from one address to the same replica: learn which
                # replica each address lands on with its first client, then add the others.
                replica_of: dict[str, int] = {}
                for n, ip in enumerate(addresses):
                    before = await socket_counts(probe, ports)
                    first = Client(sessions[ip], -1, arrivals)
                    await first.connect(url, users[n % 10][1])
                    after = await socket_counts(probe, ports)
                    replica_of[ip] = first.replica = 0 if after[0] > before[0] else 1
                    clients.append(first)
                started = time.monotonic()
                rest = [Client(sessions[ip], replica_of[ip], arrivals)
                        for i, ip in enumerate(addresses) for _ in range(PER_ADDRESS - 1)
                        if len(addresses) + i * (PER_ADDRESS - 1) < args.clients]
                rest = rest[: args.clients - len(clients)]
                for i in range(0, len(rest), 50):
                    batch = rest[i : i + 50]
                    await asyncio.gather(*(c.connect(url, users[(i + j) % 10][1]) for j, c in enumerate(batch)))
                clients += rest
                counts = await socket_counts(probe, ports)
            print(f"{len(clients):,} clients connected over websocket in {time.monotonic() - started:.1f} s; "
                  f"per replica {counts}")
            started = time.monotonic()
            for i in range(0, len(clients), 50):
                acks = await asyncio.gather(*(c.call("board:join", {"boardId": board}) for c in clients[i:i + 50]))
                assert all(a["ok"] for a in acks), [a for a in acks if not a["ok"]][:3]
            print(f"all joined one board in {time.monotonic() - started:.1f} s")
            sender = next(c for c in clients if c.replica == 0)
            receivers = len(clients) - 1
            sent: dict[int, float] = {}
            await asyncio.sleep(1)
            for seq in range(-3, args.broadcasts):  # three warm-up broadcasts (negative numbers)
                sent[seq] = time.perf_counter()
                await sender.emit("board:awareness", {"boardId": board,
                                                      "update": base64.b64encode(str(seq).encode()).decode()})
                await asyncio.sleep(1.0)  # each broadcast is delivered before the next starts
            await asyncio.sleep(2)
        finally:
            await asyncio.gather(*(c.close() for c in clients))
            for session in sessions.values():
                await session.close()
        same = [(at - sent[seq]) * 1000 for seq, rep, at in arrivals if seq >= 0 and rep == 0]
        other = [(at - sent[seq]) * 1000 for seq, rep, at in arrivals if seq >= 0 and rep == 1]
        delivered = len(same) + len(other)
        expected = receivers * args.broadcasts
        print(f"{args.broadcasts} broadcasts to {receivers:,} receivers: {delivered:,} of {expected:,} delivered")
        print("| receivers | count per broadcast | p50 ms | p99 ms | max ms |")
        print("|---|---:|---:|---:|---:|")
        for name, values in (("on the sender's replica", same), ("on the other replica (via Redis)", other),
                             ("all", same + other)):
            print(f"| {name} | {len(values) // max(1, args.broadcasts)} | {percentile(values, 50):.1f} "
                  f"| {percentile(values, 99):.1f} | {max(values):.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
