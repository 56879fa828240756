"""/api/ai through a real gateway app and a real engine process (OpenAI-protocol stand-in as the model)."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from collabry.cache.client import LuaScript, lua_source
from collabry.config import load_settings
from tests.integration.helpers import user_with_token
from tests.support.engine_fixtures import EngineHandle
from tests.support.eventually import eventually
from tests.support.fake_openai import Reply
from tests.support.redis_monitor import commands_during

from .conftest import PHOTOSYNTHESIS

pytestmark = pytest.mark.slow


@pytest.fixture
async def api(aiohttp_client: Callable[..., Any], engine_env: dict[str, str], engine: EngineHandle) -> Any:
    from collabry.gateway.app import create_app

    settings = load_settings({**engine_env, "COLLABRY_ENGINE_URL": engine.url}, require=("jwt-secret",))
    return await aiohttp_client(await create_app(settings))


@pytest.fixture
async def engine_http(engine: EngineHandle) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=engine.url, headers=engine.headers) as session:
        yield session


async def notebook_with_source(api: Any, user: dict[str, Any]) -> str:
    resp = await api.post("/api/notebooks", json={"title": "Biology"}, headers=user["headers"])
    assert resp.status == 201, await resp.text()
    notebook = (await resp.json())["notebook"]["id"]
    resp = await api.post(
        f"/api/notebooks/{notebook}/sources",
        json={"title": "Photosynthesis", "text": PHOTOSYNTHESIS},
        headers=user["headers"],
    )
    assert resp.status == 202, await resp.text()

    async def processed() -> bool:
        resp = await api.get(f"/api/notebooks/{notebook}/sources", headers=user["headers"])
        sources = (await resp.json())["sources"]
        if sources and sources[0]["status"] != "processing":
            assert sources[0]["status"] == "ready", sources
            return True
        return False

    await eventually(processed, 60, "the source to be indexed", interval=0.1)
    return notebook


async def test_study_tools_through_the_gateway(api: Any, engine: EngineHandle) -> None:
    user = await user_with_token(api)
    notebook = await notebook_with_source(api, user)
    engine.fake_llm.push(
        Reply(text=json.dumps({"summary": "Plants make sugar.", "keyPoints": ["Chloroplasts"]})),
        Reply(text=json.dumps({"cards": [{"front": "Where?", "back": "Chloroplasts"}] * 4})),
        Reply(text="not json"),
        Reply(text="still not json"),
    )
    trace = "trace-" + secrets.token_hex(4)
    resp = await api.post(
        "/api/ai/summarize", json={"notebookId": notebook}, headers={**user["headers"], "X-Request-ID": trace}
    )
    assert resp.status == 200 and await resp.json() == {"summary": "Plants make sugar.", "keyPoints": ["Chloroplasts"]}
    # The request id crosses from the gateway into the engine's log.
    engine_log = engine.process.log_path.read_text()
    assert any(trace in line and "/internal/tools/summarize" in line for line in engine_log.splitlines())
    resp = await api.post("/api/ai/flashcards", json={"notebookId": notebook, "count": 2}, headers=user["headers"])
    assert resp.status == 200 and len((await resp.json())["cards"]) == 2
    resp = await api.post("/api/ai/mindmap", json={"notebookId": notebook}, headers=user["headers"])
    assert resp.status == 502 and (await resp.json())["error"]["code"] == "llm_invalid_output"
    resp = await api.post("/api/ai/quiz", json={"notebookId": notebook, "count": 99}, headers=user["headers"])
    assert resp.status == 400

    usage = await (await api.get("/api/usage", headers=user["headers"])).json()
    assert usage["used"]["ai"] == 2  # the failed mind map was given back

    other = await user_with_token(api, "other")
    resp = await api.post("/api/ai/summarize", json={"notebookId": notebook}, headers=other["headers"])
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await api.post("/api/ai/summarize", json={"notebookId": notebook})
    assert resp.status == 401


async def test_sessions_and_messages(api: Any, engine: EngineHandle, engine_http: aiohttp.ClientSession) -> None:
    user = await user_with_token(api)
    notebook = await notebook_with_source(api, user)
    engine.fake_llm.push(Reply(text="In the chloroplasts [1]."))
    resp = await engine_http.post(
        "/internal/chat",
        json={
            "userId": user["id"],
            "message": "Where?",
            "streamId": "s" + secrets.token_hex(6),
            "notebookId": notebook,
        },
    )
    assert resp.status == 202
    started = await resp.json()
    session_id = started["sessionId"]

    async def saved() -> list[dict[str, Any]] | None:
        resp = await api.get(f"/api/ai/sessions/{session_id}/messages", headers=user["headers"])
        assert resp.status == 200
        messages: list[dict[str, Any]] = (await resp.json())["messages"]
        return messages if len(messages) == 2 else None

    messages = await eventually(saved, 20, "the question and its answer to be saved")
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["id"] == started["messageId"] and messages[1]["content"] == "In the chloroplasts [1]."
    assert messages[1]["sources"][0]["title"] == "Photosynthesis" and "sources" not in messages[0]

    sessions = (await (await api.get("/api/ai/sessions", headers=user["headers"])).json())["sessions"]
    assert [(s["id"], s["title"], s["notebookId"]) for s in sessions] == [(session_id, "Where?", notebook)]
    assert sessions[0]["updatedAt"].endswith("Z")

    other = await user_with_token(api, "other")
    assert (await api.get(f"/api/ai/sessions/{session_id}/messages", headers=other["headers"])).status == 404
    assert (await api.delete(f"/api/ai/sessions/{session_id}", headers=other["headers"])).status == 404
    assert (await (await api.get("/api/ai/sessions", headers=other["headers"])).json())["sessions"] == []

    assert (await api.delete(f"/api/ai/sessions/{session_id}", headers=user["headers"])).status == 204
    assert (await api.get(f"/api/ai/sessions/{session_id}/messages", headers=user["headers"])).status == 404
    assert (await (await api.get("/api/ai/sessions", headers=user["headers"])).json())["sessions"] == []


async def test_a_metered_ai_request_asks_redis_once(api: Any, engine: EngineHandle, infra: Any) -> None:
    """The global rule, the session, the cached user, the AI rule and the quota unit of a metered AI
    request are one EVALSHA of the request's script (``security.METERED_AI_ROUTES``): the separate AI
    rule and quota scripts are not called. Watched with Redis' MONITOR."""
    user = await user_with_token(api)
    notebook = await notebook_with_source(api, user)
    summary = Reply(text=json.dumps({"summary": "Plants make sugar.", "keyPoints": ["Chloroplasts"]}))
    engine.fake_llm.push(summary, summary)
    # The first one fills the user's cached copy and seeds today's counter (the fallback path).
    first = await api.post("/api/ai/summarize", json={"notebookId": notebook}, headers=user["headers"])
    assert first.status == 200
    scripts = {
        "request": LuaScript(lua_source("gcra.lua", "quota_take.lua", "request.lua")).sha,
        "ai rule": LuaScript(lua_source("gcra.lua", "ratelimit.lua")).sha,
        "quota": LuaScript(lua_source("quota_take.lua", "quota.lua")).sha,
    }
    resp, seen = await commands_during(
        infra.redis_url, lambda: api.post("/api/ai/summarize", json={"notebookId": notebook}, headers=user["headers"])
    )
    assert resp.status == 200
    calls: list[str] = []
    for command in seen:
        text = command["command"]
        if command.get("client_type") != "lua" and text.startswith("EVALSHA") and user["id"] in text:
            # (the write-behind's "persisted" call on the quota script comes after the answer)
            calls += [name for name, sha in scripts.items() if sha in text and "persisted" not in text.split()]
    assert calls == ["request"]
    usage = await (await api.get("/api/usage", headers=user["headers"])).json()
    assert usage["used"]["ai"] == 2
