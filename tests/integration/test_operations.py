"""Probes, OpenAPI truthfulness, dependency outages and graceful drain."""

from __future__ import annotations

import asyncio
import json
import re
import signal

import aiohttp
import pytest

from collabry.devstack.components import free_port
from tests.support.eventually import eventually

from .helpers import PASSWORD, login, register


async def test_health_ready_metrics(gateway):
    resp = await gateway.get("/health")
    assert resp.status == 200 and await resp.json() == {"status": "ok"}
    resp = await gateway.get("/ready")
    body = await resp.json()
    assert resp.status == 200, body
    assert body["status"] == "ready" and body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
    await gateway.get("/api/auth/me")
    text = await (await gateway.get("/metrics")).text()
    assert 'collabry_http_requests_total{method="GET",process="gateway",route="/api/auth/me",status="401"}' in text
    assert "collabry_http_request_duration_seconds_bucket" in text
    assert 'collabry_ratelimit_decisions_total{decision="allow",rule="global"}' in text


async def test_openapi_lists_every_route(gateway):
    doc = await (await gateway.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = set()
    for route in gateway.app.router.routes():
        info = route.resource.canonical if route.resource else ""
        if route.method in {"HEAD", "OPTIONS"} or not info.startswith("/api/"):
            continue
        served.add((route.method, info))
    assert served == documented
    for ops in doc["paths"].values():
        for op in ops.values():
            assert op["responses"], op["operationId"]


async def test_rate_limit_headers_on_api_routes(gateway):
    resp = await gateway.get("/api/auth/me")
    assert int(resp.headers["RateLimit-Limit"]) == 100
    assert int(resp.headers["RateLimit-Remaining"]) == 99
    assert int(resp.headers["RateLimit-Reset"]) > 0
    resp = await gateway.get("/health")
    assert "RateLimit-Limit" not in resp.headers


async def test_redis_outage_global_fails_open_login_fails_closed(gateway, infra):
    user = await register(gateway)
    infra.redis.stop()
    try:
        resp = await gateway.get("/api/auth/me")
        assert resp.status == 401  # passed the (failing-open) global limit, reached the handler
        resp = await gateway.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
        assert resp.status == 503
        assert (await resp.json())["error"]["code"] == "unavailable"
        ready = await gateway.get("/ready")
        assert ready.status == 503
        assert (await ready.json())["checks"]["redis"].startswith("failed")
        metrics = await (await gateway.get("/metrics")).text()
        assert 'collabry_ratelimit_decisions_total{decision="fail_open",rule="global"}' in metrics
    finally:
        infra.restart_redis()
    tokens = await login(gateway, user["email"])
    assert tokens["accessToken"]
    assert (await gateway.get("/ready")).status == 200


@pytest.mark.parametrize("server", ["postgresql", "ferretdb"])
async def test_database_outage_shows_in_ready_and_recovers(gateway, infra, server):
    if server == "postgresql":
        infra.database.postgres.stop(sig=signal.SIGINT)
    else:
        infra.database.ferretdb.stop()
    try:
        ready = await gateway.get("/ready")
        assert ready.status == 503
        assert (await ready.json())["checks"]["database"].startswith("failed")
        resp = await gateway.post("/api/auth/login", json={"email": "x@example.com", "password": PASSWORD})
        assert resp.status == 503, await resp.text()  # a clear "try again", never a 500
        assert (await resp.json())["error"]["code"] == "unavailable"
        assert resp.headers["Retry-After"] == "1"
    finally:
        if server == "postgresql":
            infra.database.start_postgres()
        else:
            infra.database.start_ferretdb()

    async def ready() -> bool:
        return (await gateway.get("/ready")).status == 200

    await eventually(ready, 20, "the database to come back in /ready", interval=0.2)
    user = await register(gateway)
    assert await login(gateway, user["email"])


async def _gauge(session: aiohttp.ClientSession, port: int) -> float:
    text = await (await session.get(f"http://127.0.0.1:{port}/metrics")).text()
    match = re.search(r'^collabry_http_requests_in_flight\{process="gateway"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_sigterm_drains_a_slow_request(spawn):
    port = free_port()
    proc = spawn("gateway", "gateway", "--port", str(port), port=port)
    proceed = asyncio.Event()
    body = json.dumps({"email": "drain@example.com", "password": PASSWORD, "name": "Drain"}).encode()

    async def slow_body():
        yield body[:10]
        await proceed.wait()
        yield body[10:]

    async with aiohttp.ClientSession() as session:
        request = asyncio.create_task(
            session.post(
                f"http://127.0.0.1:{port}/api/auth/register",
                data=slow_body(),
                headers={"Content-Type": "application/json"},
            )
        )
        async def in_flight() -> bool:
            return await _gauge(session, port) >= 2  # the scrape itself plus the slow request

        await eventually(in_flight, 10, "the slow request in flight")
        proc.send(signal.SIGTERM)

        async def draining() -> bool:
            async with session.get(f"http://127.0.0.1:{port}/ready") as ready:
                if ready.status != 503:
                    return False
                assert await ready.json() == {"status": "draining"}
                return True

        await eventually(draining, 10, "/ready to say draining")
        assert proc.running
        proceed.set()
        resp = await request
        assert resp.status == 201, await resp.text()
    assert proc.proc is not None
    assert await asyncio.to_thread(proc.proc.wait, 15) == 0


async def test_sd_notify_ready_and_stopping(spawn, tmp_path):
    import socket

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    port = free_port()
    try:
        proc = spawn("gateway", "gateway", "--port", str(port), port=port, extra_env={"NOTIFY_SOCKET": str(path)})
        assert (await asyncio.to_thread(sock.recv, 256)) == b"READY=1"
        proc.send(signal.SIGTERM)
        assert (await asyncio.to_thread(sock.recv, 256)) == b"STOPPING=1"
        assert proc.proc is not None and await asyncio.to_thread(proc.proc.wait, 15) == 0
    finally:
        sock.close()
