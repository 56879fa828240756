"""One user's API calls on an empty database and on one holding 1,000 other users' data, side by side.

    .venv/bin/python tests/bench/bench_data_scale.py [--others 1000] [--repeat 40]

Two stacks run at once, each with its own Redis, PostgreSQL + DocumentDB behind FerretDB v2, an
engine (its model calls go to the OpenAI-protocol stand-in, first token after 50 ms) and a gateway.
On each, the measured user is built through the API the same way: notebooks, text sources ingested
by the engine (chunks with real embeddings), chat sessions with their messages, planner tasks,
notifications, earlier logins. One stack then gets ``--others`` more users: copies of its user's
documents with every id, email and key rewritten (so they have the same shape and size as real
data, whatever the schema), inserted straight into the database, ~150 documents each.

Both databases get ``VACUUM ANALYZE`` (as autovacuum would have long before on a live database) and
the same warm-up. Then each round calls every measured call once on each stack, the stack called
first alternating from round to round: drift (the machine's other load, caches, the user's own
growing history) falls on both columns alike. Each row is the median of ``--repeat`` rounds; the
goal is every call within 1.3x of its empty-database time. Time to first token is
``POST /api/ai/chat`` until the first ``token`` event; retrieval is the engine's
``POST /internal/retrieve``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from engine_common import infra, synthetic_text  # type: ignore[import-not-found]
from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError
from realtime_common import PASSWORD, stack  # type: ignore[import-not-found]
from tests.support.eventually import eventually  # realtime_common put the repository on sys.path

from collabry.db.client import new_id
from collabry.devstack.components import Postgres, free_port

GOAL = 1.3
QUESTION = "What do chloroplasts do with light?"


class Client:
    """The measured user, through the gateway's public API."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base
        self.email = f"scale-{secrets.token_hex(4)}@example.com"
        self.headers: dict[str, str] = {}
        self.user_id = ""

    async def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        async with self.http.request(method, self.base + path, headers=self.headers, **kw) as resp:
            body = await resp.read()
            assert resp.status == expect, f"{method} {path}: {resp.status} {body[:300]!r}"
            return json.loads(body) if body and resp.content_type == "application/json" else None

    async def register(self) -> None:
        user = await self.call("POST", "/api/auth/register", 201,
                               json={"email": self.email, "password": PASSWORD, "name": "Scale"})
        self.user_id = user["user"]["id"]
        await self.login()

    async def login(self) -> None:
        tokens = await self.call("POST", "/api/auth/login", json={"email": self.email, "password": PASSWORD})
        self.headers = {"Authorization": f"Bearer {tokens['accessToken']}"}

    async def ask(self, notebook: str, session: str | None = None) -> tuple[float, str]:
        """(seconds to the first token, session id) of one streamed answer."""
        body: dict[str, Any] = {"message": QUESTION, "notebookId": notebook}
        if session:
            body["sessionId"] = session
        started = time.perf_counter()
        first = float("nan")
        session_id = session or ""
        headers = {**self.headers, "Accept": "text/event-stream"}
        async with self.http.post(self.base + "/api/ai/chat", json=body, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            event = ""
            async for raw in resp.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "token" and first != first:
                    first = time.perf_counter() - started
                elif line.startswith("data: ") and event in ("meta", "start"):
                    session_id = json.loads(line[6:]).get("sessionId") or session_id
                elif line.startswith("data: ") and event in ("done", "error"):
                    break
        return first, session_id


async def build_user(client: Client, db: Any) -> dict[str, Any]:
    """Realistic data for one user, made through the API."""
    await client.register()
    # the pro plan: the free plan's daily AI requests would not last the run
    await db.users.update_one({"_id": client.user_id}, {"$set": {"plan": "pro"}})
    notebooks = []
    for n in range(4):
        created = await client.call("POST", "/api/notebooks", 201, json={"title": f"Course {n}"})
        notebooks.append(created["notebook"]["id"])
    sources = []
    for n in range(3):
        form = aiohttp.FormData()
        text = synthetic_text(12, seed=n) + "\nChloroplasts turn light into chemical energy.\n"
        form.add_field("file", text.encode(), filename=f"chapter{n}.txt", content_type="text/plain")
        doc = await client.call("POST", f"/api/notebooks/{notebooks[0]}/sources", 202, data=form)
        sources.append(doc["source"]["id"])

    async def processed() -> bool:
        listed = (await client.call("GET", f"/api/notebooks/{notebooks[0]}/sources"))["sources"]
        return all(s["status"] != "processing" for s in listed)

    await eventually(processed, 300, "the sources to be processed", interval=0.2)
    session = None
    for _ in range(6):  # one session of six questions, then another of one: messages and their sources
        _, session = await client.ask(notebooks[0], session)
    _, other_session = await client.ask(notebooks[1])
    for n in range(10):
        await client.call("POST", "/api/planner/tasks", 201,
                          json={"title": f"Revise chapter {n}", "dueAt": f"2027-0{1 + n % 9}-1{n % 10}T09:00:00Z"})
    # A history like that of a user of some weeks: earlier logins (sessions and refresh tokens) and
    # one-question chats, so that the copies carry them too.
    for _ in range(20):
        await client.login()
    for n in range(10):
        await client.ask(notebooks[n % 4])
    return {"notebook": notebooks[0], "session": session or other_session}


async def clone_user(db: Any, user_id: str, copies: int) -> int:
    """Insert ``copies`` other users shaped exactly like ``user_id``'s documents."""
    owned: dict[str, list[dict[str, Any]]] = {}
    ids = {user_id}
    names = [n for n in await db.list_collection_names() if not n.startswith("system.")]
    for _ in range(3):  # documents that name the user, or a document of the user (to a fixed point)
        for name in names:
            found = []
            async for doc in db[name].find({}):
                text = json.dumps(doc, default=str)
                if any(i in text for i in ids):
                    found.append(doc)
                    if isinstance(doc["_id"], str):
                        ids.add(doc["_id"])
            owned[name] = found
    inserted = 0
    for start in range(0, copies, 50):
        batch: dict[str, list[dict[str, Any]]] = {name: [] for name in owned}
        for _ in range(start, min(copies, start + 50)):
            mapping = {old: new_id() for old in ids}
            tag = secrets.token_hex(5)
            for name, docs in owned.items():
                for doc in docs:
                    batch[name].append(_rewrite(doc, mapping, tag))
        for name, docs in batch.items():
            if not docs:
                continue
            try:
                result = await db[name].insert_many(docs, ordered=False)
                inserted += len(result.inserted_ids)
            except BulkWriteError as exc:  # documents keyed by something global (a token hash): skipped
                inserted += exc.details["nInserted"]
    return inserted


def _rewrite(value: Any, mapping: dict[str, str], tag: str) -> Any:
    if isinstance(value, dict):
        return {k: _rewrite(v, mapping, tag) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, mapping, tag) for v in value]
    if isinstance(value, str):
        if value in mapping:
            return mapping[value]
        if "@" in value and value.endswith("@example.com"):
            return f"{tag}-{value}"
        for old, new in mapping.items():
            if old in value:
                value = value.replace(old, new)
        return value
    return value


@dataclass
class Side:
    """One stack and its measured user."""

    client: Client
    engine: str
    service_token: str
    data: dict[str, Any]
    db: Any
    cluster: Postgres


async def start_side(stacks: contextlib.ExitStack, http: aiohttp.ClientSession) -> Side:
    base = stacks.enter_context(infra())
    s = stacks.enter_context(stack(base))
    llm = s.fake_llm(first_delay=0.05, delay=0.005, text="Chloroplasts turn light into sugar.")
    engine_port = free_port()
    engine = f"http://127.0.0.1:{engine_port}"
    extra = {"COLLABRY_LLM_BASE_URL": f"http://127.0.0.1:{llm}/v1", "COLLABRY_ENGINE_URL": engine,
             "COLLABRY_AI_LIMIT": "1000000/60"}
    s.start("engine", ["engine", "--port", str(engine_port)], port=engine_port, extra=extra)
    gateway = f"http://127.0.0.1:{s.gateways(1, extra=extra)[0]}"
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(base.mongo_uri, tz_aware=True)
    db = mongo["bench"]
    client = Client(http, gateway)
    data = await build_user(client, db)
    await db.notifications.insert_many([
        {"_id": new_id(), "user_id": client.user_id, "type": "reminder", "title": f"Due {n}",
         "body": "A task is due", "read": n % 3 == 0, "dedupe_key": f"bench:{client.user_id}:{n}",
         "created_at": time_now()} for n in range(15)
    ])
    service_token = (base.root / "secrets" / "service-token").read_text().strip()
    return Side(client, engine, service_token, data, db, Postgres(base.root / "postgresql"))


Call = Callable[[Side], Awaitable[float | None]]


def calls() -> dict[str, Call]:
    """The measured calls; one that returns a number measured itself (seconds), else its wall time counts."""

    def get(path: str) -> Call:
        async def call(side: Side) -> None:
            d = side.data
            await side.client.call("GET", path.format(nb=d["notebook"], session=d["session"]))
        return call

    async def login(side: Side) -> None:
        await side.client.login()

    async def retrieve(side: Side) -> None:
        c = side.client
        body = {"userId": c.user_id, "query": QUESTION, "notebookId": side.data["notebook"]}
        headers = {"Authorization": f"Bearer {side.service_token}"}
        async with c.http.post(f"{side.engine}/internal/retrieve", headers=headers, json=body) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["results"]

    async def ttft(side: Side) -> float:
        first, _ = await side.client.ask(side.data["notebook"])
        return first

    return {
        "POST /api/auth/login": login,
        "GET /api/auth/me": get("/api/auth/me"),
        "GET /api/notebooks": get("/api/notebooks"),
        "GET /api/notebooks/{id}/sources": get("/api/notebooks/{nb}/sources"),
        "GET /api/ai/sessions": get("/api/ai/sessions"),
        "GET /api/ai/sessions/{id}/messages": get("/api/ai/sessions/{session}/messages"),
        "GET /api/notifications": get("/api/notifications"),
        "GET /api/planner/tasks": get("/api/planner/tasks"),
        "GET /api/usage": get("/api/usage"),
        "engine retrieval (top 8)": retrieve,
        "time to first token (POST /api/ai/chat)": ttft,
    }


async def timed(call: Call, side: Side) -> float:
    started = time.perf_counter()
    own = await call(side)
    return own if own is not None else time.perf_counter() - started


async def interleaved(sides: tuple[Side, Side], rounds: int, warmup: int) -> list[dict[str, list[float]]]:
    """Samples (seconds) per call and side; each round calls each stack once, in alternating order."""
    measured = calls()
    samples: list[dict[str, list[float]]] = [{name: [] for name in measured} for _ in sides]
    for r in range(warmup + rounds):
        for n, (name, call) in enumerate(measured.items()):
            for i in (0, 1) if (r + n) % 2 == 0 else (1, 0):
                took = await timed(call, sides[i])
                if r >= warmup:
                    samples[i][name].append(took)
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--others", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=40, help="measured rounds (each call once per stack)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stacks:
        async with aiohttp.ClientSession() as http:
            empty = await start_side(stacks, http)
            full = await start_side(stacks, http)
            counts_before = {n: await full.db[n].count_documents({}) for n in await full.db.list_collection_names()}
            started = time.perf_counter()
            inserted = await clone_user(full.db, full.client.user_id, args.others)
            print(f"inserted {inserted:,} documents for {args.others:,} other users in "
                  f"{time.perf_counter() - started:.0f} s")
            counts = {n: await full.db[n].count_documents({}) for n in await full.db.list_collection_names()}
            grown = ", ".join(f"{n} {counts_before.get(n, 0):,} -> {c:,}" for n, c in sorted(counts.items())
                              if c != counts_before.get(n, 0))
            print(f"collections: {grown}")
            # What a live database has done long before: vacuum and fresh planner statistics (else
            # autovacuum would run during the measurement, on the same two cores). Both alike.
            for side in (empty, full):
                await asyncio.to_thread(side.cluster.psql, "VACUUM ANALYZE")
            load_before = os.getloadavg()
            samples = await interleaved((empty, full), args.repeat, warmup=5)
            load_after = os.getloadavg()
            for side in (empty, full):
                await side.db.client.close()
    print(f"\nload average (1 min) {load_before[0]:.2f} before the measurement, {load_after[0]:.2f} after")
    print(f"\n| call (median of {args.repeat} rounds) | empty database (ms) | with {args.others:,} other users (ms) "
          f"| ratio | goal <= {GOAL}x |")
    print("|---|---:|---:|---:|---|")
    worst = 0.0
    for name in samples[0]:
        before, after = (statistics.median(s[name]) * 1000 for s in samples)
        ratio = after / before if before else float("inf")
        worst = max(worst, ratio)
        print(f"| {name} | {before:.2f} | {after:.2f} | {ratio:.2f}x | {'yes' if ratio <= GOAL else 'NO'} |")
    print(f"\nworst ratio {worst:.2f}x (goal {GOAL}x)")


def time_now() -> Any:
    from collabry.db.client import utcnow

    return utcnow()


if __name__ == "__main__":
    asyncio.run(main())
