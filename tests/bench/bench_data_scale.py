"""One user's API calls with the database empty, then with 1,000 other users' data beside it.

    .venv/bin/python tests/bench/bench_data_scale.py [--others 1000] [--repeat 40]

Real Redis, PostgreSQL + DocumentDB behind FerretDB v2, an engine (its model calls go to the
OpenAI-protocol stand-in, first token after 50 ms) and a gateway. The measured user is built
through the API: notebooks, text sources ingested by the engine (chunks with real embeddings),
chat sessions with their messages, planner tasks, notifications. The other users are copies of
that user's documents with every id, email and key rewritten (so they have the same shape and
size as real data, whatever the schema), inserted straight into the database: 1,000 of them by
default, ~100 documents each.

Each row is the median of ``--repeat`` calls (after warm-up); the goal is every call within 1.3x
of its empty-database time. Between the two rounds the script runs ``VACUUM ANALYZE``, as autovacuum
would have long before on a live database. Time to first token is ``POST /api/ai/chat`` until the first ``token``
event; retrieval is the engine's ``POST /internal/retrieve``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from engine_common import infra, synthetic_text  # type: ignore[import-not-found]
from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError
from realtime_common import PASSWORD, stack  # type: ignore[import-not-found]

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


async def build_user(client: Client) -> dict[str, Any]:
    """Realistic data for one user, made through the API."""
    await client.register()
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
    deadline = time.monotonic() + 300
    while True:
        listed = (await client.call("GET", f"/api/notebooks/{notebooks[0]}/sources"))["sources"]
        if all(s["status"] != "processing" for s in listed):
            break
        assert time.monotonic() < deadline, listed
        await asyncio.sleep(0.2)
    session = None
    for _ in range(6):  # two sessions of three questions: messages and their sources
        _, session = await client.ask(notebooks[0], session)
    _, other_session = await client.ask(notebooks[1])
    for n in range(10):
        await client.call("POST", "/api/planner/tasks", 201,
                          json={"title": f"Revise chapter {n}", "dueAt": f"2027-0{1 + n % 9}-1{n % 10}T09:00:00Z"})
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


async def median_ms(fn: Callable[[], Awaitable[Any]], repeat: int) -> float:
    for _ in range(3):
        await fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def measure(
    client: Client, engine: str, service_token: str, data: dict[str, Any], repeat: int
) -> dict[str, float]:
    nb, session = data["notebook"], data["session"]
    service = {"Authorization": f"Bearer {service_token}"}

    async def retrieve() -> None:
        async with client.http.post(f"{engine}/internal/retrieve", headers=service,
                                    json={"userId": client.user_id, "query": QUESTION, "notebookId": nb}) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["results"]

    async def ttft() -> None:
        first, _ = await client.ask(nb)
        ttft_samples.append(first)

    ttft_samples: list[float] = []
    rows = {
        "POST /api/auth/login": await median_ms(client.login, repeat),
        "GET /api/auth/me": await median_ms(lambda: client.call("GET", "/api/auth/me"), repeat),
        "GET /api/notebooks": await median_ms(lambda: client.call("GET", "/api/notebooks"), repeat),
        "GET /api/notebooks/{id}/sources": await median_ms(
            lambda: client.call("GET", f"/api/notebooks/{nb}/sources"), repeat),
        "GET /api/ai/sessions": await median_ms(lambda: client.call("GET", "/api/ai/sessions"), repeat),
        "GET /api/ai/sessions/{id}/messages": await median_ms(
            lambda: client.call("GET", f"/api/ai/sessions/{session}/messages"), repeat),
        "GET /api/notifications": await median_ms(lambda: client.call("GET", "/api/notifications"), repeat),
        "GET /api/planner/tasks": await median_ms(lambda: client.call("GET", "/api/planner/tasks"), repeat),
        "GET /api/usage": await median_ms(lambda: client.call("GET", "/api/usage"), repeat),
        "engine retrieval (top 8)": await median_ms(retrieve, repeat),
    }
    await median_ms(ttft, max(10, repeat // 2))
    rows["time to first token (POST /api/ai/chat)"] = statistics.median(ttft_samples[3:]) * 1000
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--others", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    with infra() as base, stack(base) as s:
        llm = s.fake_llm(first_delay=0.05, delay=0.005, text="Chloroplasts turn light into sugar.")
        engine_port = free_port()
        engine = f"http://127.0.0.1:{engine_port}"
        extra = {"COLLABRY_LLM_BASE_URL": f"http://127.0.0.1:{llm}/v1", "COLLABRY_ENGINE_URL": engine,
                 "COLLABRY_AI_LIMIT": "1000000/60"}
        s.start("engine", ["engine", "--port", str(engine_port)], port=engine_port, extra=extra)
        gateway = f"http://127.0.0.1:{s.gateways(1, extra=extra)[0]}"
        service_token = (base.root / "secrets" / "service-token").read_text().strip()
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(base.mongo_uri, tz_aware=True)
        db = mongo["bench"]
        async with aiohttp.ClientSession() as http:
            client = Client(http, gateway)
            data = await build_user(client)
            await db.users.update_one({"_id": client.user_id}, {"$set": {"plan": "pro"}})
            await db.notifications.insert_many([
                {"_id": new_id(), "user_id": client.user_id, "type": "reminder", "title": f"Due {n}",
                 "body": "A task is due", "read": n % 3 == 0, "dedupe_key": f"bench:{client.user_id}:{n}",
                 "created_at": time_now()} for n in range(15)
            ])
            empty = await measure(client, engine, service_token, data, args.repeat)
            counts_before = {n: await db[n].count_documents({}) for n in await db.list_collection_names()}
            started = time.perf_counter()
            inserted = await clone_user(db, client.user_id, args.others)
            print(f"inserted {inserted:,} documents for {args.others:,} other users in "
                  f"{time.perf_counter() - started:.0f} s")
            counts = {n: await db[n].count_documents({}) for n in await db.list_collection_names()}
            grown = ", ".join(f"{n} {counts_before.get(n, 0):,} -> {c:,}" for n, c in sorted(counts.items())
                              if c != counts_before.get(n, 0))
            print(f"collections: {grown}")
            # What a live database has done long before: vacuum and fresh planner statistics (else
            # autovacuum would run during the measurement, on the same two cores).
            started = time.perf_counter()
            await asyncio.to_thread(Postgres(base.root / "postgresql").psql, "VACUUM ANALYZE")
            print(f"VACUUM ANALYZE in {time.perf_counter() - started:.0f} s")
            full = await measure(client, engine, service_token, data, args.repeat)
        await mongo.close()
    print(f"\n| call (median of {args.repeat}) | empty database (ms) | with {args.others:,} other users (ms) "
          f"| ratio | goal <= {GOAL}x |")
    print("|---|---:|---:|---:|---|")
    worst = 0.0
    for name, before in empty.items():
        ratio = full[name] / before if before else float("inf")
        worst = max(worst, ratio)
        print(f"| {name} | {before:.2f} | {full[name]:.2f} | {ratio:.2f}x | {'yes' if ratio <= GOAL else 'NO'} |")
    print(f"\nworst ratio {worst:.2f}x (goal {GOAL}x)")


def time_now() -> Any:
    from collabry.db.client import utcnow

    return utcnow()


if __name__ == "__main__":
    asyncio.run(main())
