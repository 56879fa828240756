"""A gateway in front of two engine processes: users spread by rendezvous hashing (each user's calls
go to one engine), and one engine killed during traffic: the answer it was streaming ends with a
clear error, and every request after it succeeds on the other engine."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from collabry.config import load_settings
from collabry.engine_client import rendezvous
from tests.integration.helpers import user_with_token
from tests.support.engine_fixtures import EngineHandle
from tests.support.fake_openai import Reply

from .test_gateway_ai import notebook_with_source

pytestmark = pytest.mark.slow

INGEST_ROUTE = 'route="/internal/sources/{sourceId}/ingest-text"'


@pytest.fixture
def engines(start_engine: Callable[..., EngineHandle]) -> tuple[EngineHandle, EngineHandle]:
    return start_engine(name="engine-a"), start_engine(name="engine-b")


@pytest.fixture
async def api(aiohttp_client: Callable[..., Any], engine_env: dict[str, str], engines: tuple[EngineHandle, ...]) -> Any:
    from collabry.gateway.app import create_app

    env = {
        **engine_env,
        "COLLABRY_ENGINE_URL": ",".join(e.url for e in engines),
        "COLLABRY_STREAM_STALE_AFTER": "2",  # an answer whose engine died ends within seconds
    }
    return await aiohttp_client(await create_app(load_settings(env, require=("jwt-secret",))))


async def served(engine: EngineHandle, route: str) -> int:
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(f"{engine.url}/metrics")).text()
    pattern = rf"^collabry_http_requests_total{{[^}}]*{re.escape(route)}[^}}]*}} (\S+)$"
    return sum(int(float(v)) for v in re.findall(pattern, text, re.M))


async def read_until_end(resp: aiohttp.ClientResponse, *, on_token: Callable[[], None] | None = None) -> list[dict]:
    """The SSE events of an answer (``event`` and ``data``) until it ends; ``on_token`` once."""
    events: list[dict] = []
    fields: dict[str, str] = {}
    while raw := await resp.content.readline():
        line = raw.decode().rstrip("\n")
        if line and not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.lstrip(" ")
        elif not line and "event" in fields:
            events.append({"event": fields["event"], "data": json.loads(fields["data"])})
            fields = {}
            if events[-1]["event"] == "token" and on_token is not None:
                on_token()
                on_token = None
            if events[-1]["event"] in ("done", "error"):
                break
    return events


async def test_users_stay_on_their_engine_and_survive_one_engine_dying(
    api: Any, engines: tuple[EngineHandle, EngineHandle]
) -> None:
    a, b = engines
    urls = [a.url, b.url]
    # users until each engine owns at least two (user ids are random)
    users: list[dict[str, Any]] = []
    while min(sum(rendezvous(urls, u["id"])[0] == e.url for u in users) for e in engines) < 2:
        assert len(users) < 40, "rendezvous hashing never chose one of the engines"
        users.append(await user_with_token(api, f"replica{len(users)}"))
    owner = {u["id"]: rendezvous(urls, u["id"])[0] for u in users}
    notebooks = {u["id"]: await notebook_with_source(api, u) for u in users}
    # each user's ingestion went to its own engine, and only there
    for engine in engines:
        assert await served(engine, INGEST_ROUTE) == sum(o == engine.url for o in owner.values()), engine.url

    # An answer streaming from engine A when A is killed ends with a clear error.
    on_a = [u for u in users if owner[u["id"]] == a.url]
    a.fake_llm.push(Reply(text="slowly " * 200, delay=0.1))
    resp = await api.post(
        "/api/ai/chat", json={"message": "Explain photosynthesis", "notebookId": notebooks[on_a[0]["id"]]},
        headers=on_a[0]["headers"],
    )  # fmt: skip
    assert resp.status == 200, await resp.text()
    events = await read_until_end(resp, on_token=lambda: a.process.send(signal.SIGKILL))
    assert [e["event"] for e in events][:2] == ["meta", "sources"]
    assert events[-1]["event"] == "error" and events[-1]["data"]["code"] == "stream_interrupted", events[-1]
    await asyncio.to_thread(a.process.proc.wait, 10)  # type: ignore[union-attr]

    # Traffic after the kill: every request succeeds, A's users on engine B.
    async def summarize(user: dict[str, Any]) -> int:
        resp = await api.post("/api/ai/summarize", json={"notebookId": notebooks[user["id"]]}, headers=user["headers"])
        assert resp.status == 200, (owner[user["id"]] == a.url, await resp.text())
        return resp.status

    summary = Reply(text=json.dumps({"summary": "Plants make sugar.", "keyPoints": ["Chloroplasts"]}))
    b.fake_llm.push(*[summary] * (2 * len(users)))
    for _ in range(2):
        assert set(await asyncio.gather(*(summarize(u) for u in users))) == {200}
    # B answered for everyone; A's users moved there after one refused connection each
    assert await served(b, 'route="/internal/tools/{tool}"') == 2 * len(users)
    # the gateway knows A is down (a refused call or its health check), B up
    metrics = await (await api.get("/metrics")).text()
    assert f'collabry_engine_up{{engine="{a.url}"}} 0.0' in metrics
    assert f'collabry_engine_up{{engine="{b.url}"}} 1.0' in metrics
