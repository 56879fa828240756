"""The gateway's engine client against a small real HTTP server: headers, errors, retries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import structlog
import structlog.testing
from aiohttp import web

from collabry.devstack.components import free_port
from collabry.engine_client import EngineClient, EngineError, EngineUnavailable


async def test_calls_carry_the_token_and_request_id_and_map_errors(aiohttp_server: Callable[..., Any]) -> None:
    seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        body = await request.json()
        status = {"ok": 200, "missing": 404, "crash": 500, "busy": 503, "bad": 502}[body["query"]]
        if status == 200:
            return web.json_response({"results": [{"sourceId": "s1"}]})
        return web.json_response({"error": {"code": f"code_{status}", "message": f"message {status}"}}, status=status)

    app = web.Application()
    app.router.add_post("/internal/retrieve", handler)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        client = EngineClient(session, str(server.make_url("")), "service-secret")
        structlog.contextvars.bind_contextvars(request_id="req-123")
        try:
            assert await client.retrieve("u1", "ok") == [{"sourceId": "s1"}]
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        assert seen[0]["Authorization"] == "Bearer service-secret" and seen[0]["X-Request-ID"] == "req-123"

        with pytest.raises(EngineError) as missing:
            await client.retrieve("u1", "missing")
        assert (missing.value.status, missing.value.code) == (404, "code_404")
        with pytest.raises(EngineError) as crash:
            await client.retrieve("u1", "crash")
        assert (crash.value.status, crash.value.code) == (502, "engine_error")
        with pytest.raises(EngineError) as bad:
            await client.retrieve("u1", "bad")
        assert (bad.value.status, bad.value.code) == (502, "code_502")
        with pytest.raises(EngineUnavailable) as busy:
            await client.retrieve("u1", "busy")
        assert busy.value.status == 503 and busy.value.headers["Retry-After"] == "5"


async def test_connection_refused_is_retried_then_unavailable() -> None:
    async with aiohttp.ClientSession() as session:
        client = EngineClient(session, f"http://127.0.0.1:{free_port()}", "t", attempts=3, backoff=0.01)
        with structlog.testing.capture_logs() as logs, pytest.raises(EngineUnavailable) as refused:
            await client.delete_source("s1", "u1")
        assert refused.value.code == "engine_unavailable"
        assert [entry["attempt"] for entry in logs if entry["event"] == "engine_retry"] == [1, 2, 3]


async def test_unknown_tool_names_are_refused_locally() -> None:
    async with aiohttp.ClientSession() as session:
        client = EngineClient(session, "http://127.0.0.1:9", "t")
        with pytest.raises(ValueError, match="unknown tool"):
            await client.tool("poem", {"userId": "u"})
