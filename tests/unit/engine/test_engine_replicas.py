"""The engine client over several engines (small real HTTP servers): rendezvous hashing by user,
failover on a refused connection or a 503, health checks, and no failover on an answer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from collabry.config import load_settings
from collabry.devstack.components import free_port
from collabry.engine_client import EngineClient, EngineError, EngineUnavailable, rendezvous
from collabry.metrics import ENGINE_FAILOVERS


def test_rendezvous_is_stable_spread_and_moves_only_the_lost_engines_users() -> None:
    urls = ["http://e1:8100", "http://e2:8100", "http://e3:8100"]
    users = [f"user{i}" for i in range(3000)]
    first = {u: rendezvous(urls, u)[0] for u in users}
    assert first == {u: rendezvous(list(reversed(urls)), u)[0] for u in users}  # order of the list is irrelevant
    shares = Counter(first.values())
    assert all(800 < shares[u] < 1200 for u in urls), shares
    # without e2, e2's users move (to their second choice); nobody else moves
    without = {u: rendezvous([urls[0], urls[2]], u)[0] for u in users}
    moved = {u for u in users if without[u] != first[u]}
    assert moved == {u for u in users if first[u] == urls[1]}
    assert all(without[u] == rendezvous(urls, u)[1] for u in moved)


def test_settings_take_a_list_of_engines(tmp_path: Any) -> None:
    settings = load_settings({"COLLABRY_ENGINE_URL": "http://10.0.0.1:8100, http://10.0.0.2:8100/"})
    assert settings.engine_urls == ("http://10.0.0.1:8100", "http://10.0.0.2:8100")
    assert settings.engine_url == "http://10.0.0.1:8100"
    from collabry.config import ConfigError

    with pytest.raises(ConfigError, match="COLLABRY_ENGINE_URL"):
        load_settings({"COLLABRY_ENGINE_URL": "http://a:1,http://a:1"})
    with pytest.raises(ConfigError, match="COLLABRY_ENGINE_URL"):
        load_settings({"COLLABRY_ENGINE_URL": "http://a:1,http://user:pw@b:1"})


async def engine_app(aiohttp_server: Callable[..., Any], name: str, status: int = 200) -> tuple[str, list[str]]:
    """A stand-in engine answering /internal/retrieve with its name (or ``status``) and /health."""
    calls: list[str] = []

    async def retrieve(request: web.Request) -> web.Response:
        body = await request.json()
        calls.append(body["userId"])
        if status != 200:
            return web.json_response({"error": {"code": "x", "message": "x"}}, status=status)
        return web.json_response({"results": [{"engine": name}]})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"}, status=200 if status == 200 else 503)

    app = web.Application()
    app.router.add_post("/internal/retrieve", retrieve)
    app.router.add_get("/health", health)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), calls


def user_first_on(urls: list[str], url: str) -> str:
    return next(f"u{i}" for i in range(1000) if rendezvous(urls, f"u{i}")[0] == url)


async def test_each_user_sticks_to_one_engine(aiohttp_server: Callable[..., Any]) -> None:
    (u1, calls1), (u2, calls2) = await engine_app(aiohttp_server, "one"), await engine_app(aiohttp_server, "two")
    async with aiohttp.ClientSession() as session:
        client = EngineClient(session, [u1, u2], "token")
        users = [f"student{i}" for i in range(40)]
        for _ in range(3):
            for user in users:
                [hit] = await client.retrieve(user, "q")
                assert hit["engine"] == ("one" if rendezvous([u1, u2], user)[0] == u1 else "two")
    assert calls1 and calls2 and not set(calls1) & set(calls2)


async def test_a_refused_connection_moves_the_call_to_the_next_engine(aiohttp_server: Callable[..., Any]) -> None:
    live, calls = await engine_app(aiohttp_server, "live")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    user = user_first_on([dead, live], dead)
    before = ENGINE_FAILOVERS._value.get()
    async with aiohttp.ClientSession() as session:
        client = EngineClient(session, [dead, live], "token", backoff=0.01)
        assert client.order(user) == [dead, live]
        assert await client.retrieve(user, "q") == [{"engine": "live"}]
        assert ENGINE_FAILOVERS._value.get() == before + 1
        # the dead engine is now tried last: no second refusal
        assert client.order(user) == [live, dead]
        assert await client.retrieve(user, "q") == [{"engine": "live"}]
        assert ENGINE_FAILOVERS._value.get() == before + 1
    assert calls == [user, user]


async def test_a_503_moves_the_call_and_an_error_answer_does_not(aiohttp_server: Callable[..., Any]) -> None:
    busy, busy_calls = await engine_app(aiohttp_server, "busy", status=503)
    ok, _ = await engine_app(aiohttp_server, "ok")
    failing, failing_calls = await engine_app(aiohttp_server, "failing", status=404)
    async with aiohttp.ClientSession() as session:
        client = EngineClient(session, [busy, ok], "token", backoff=0.01)
        user = user_first_on([busy, ok], busy)
        assert await client.retrieve(user, "q") == [{"engine": "ok"}] and busy_calls == [user]
        # a 4xx is the engine's answer about the request: passed on, never repeated elsewhere
        client = EngineClient(session, [failing, ok], "token", backoff=0.01)
        user = user_first_on([failing, ok], failing)
        with pytest.raises(EngineError) as caught:
            await client.retrieve(user, "q")
        assert caught.value.status == 404 and failing_calls == [user]


async def test_all_engines_down_is_engine_unavailable_and_health_checks_see_them_return(
    aiohttp_server: Callable[..., Any],
) -> None:
    dead1, dead2 = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    live, _ = await engine_app(aiohttp_server, "live")
    async with aiohttp.ClientSession() as session:
        client = EngineClient(session, [dead1, dead2], "token", backoff=0.01)
        with pytest.raises(EngineUnavailable):
            await client.retrieve("u1", "q")
        client = EngineClient(session, [dead1, live], "token")
        assert await client.check() == {dead1: False, live: True}
        assert all(client.order(f"u{i}")[0] == live for i in range(20))
