"""Two gateway replicas behind the project's nginx rules share one Redis-backed limit."""

from __future__ import annotations

import re

import aiohttp
import pytest

from collabry.devstack.components import free_port


@pytest.fixture
def two_replicas(spawn, nginx_for):
    ports = [free_port(), free_port()]
    for port in ports:
        spawn(f"gateway-{port}", "gateway", "--port", str(port), port=port)
    _, public = nginx_for(ports)
    return ports, public


def served(metrics: str) -> int:
    return sum(
        int(float(m))
        for m in re.findall(
            r'^collabry_http_requests_total\{method="GET",process="gateway",route="/api/auth/me",status="\d+"\} (\S+)$',
            metrics,
            re.M,
        )
    )


async def test_shared_global_limit_and_forged_forwarded_for(two_replicas):
    ports, public = two_replicas
    base = f"http://127.0.0.1:{public}"
    statuses = []
    # Clients come from addresses other than nginx's own (127.0.0.1, the trusted proxy).
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as session:
        for i in range(100):
            # A client forging X-Forwarded-For must not get a fresh key per request.
            async with session.get(f"{base}/api/auth/me", headers={"X-Forwarded-For": f"198.51.100.{i}"}) as resp:
                statuses.append(resp.status)
                remaining = int(resp.headers["RateLimit-Remaining"])
        assert statuses == [401] * 100
        assert remaining == 0
        async with session.get(f"{base}/api/auth/me") as resp:
            assert resp.status == 429
            body = await resp.json()
            assert body["error"]["code"] == "rate_limited"
            assert int(resp.headers["Retry-After"]) >= 1
        # both replicas took part
        per_replica = []
        for port in ports:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                per_replica.append(served(await resp.text()))
        assert all(n > 0 for n in per_replica), per_replica
        assert sum(per_replica) == 101
    # another client address (seen by nginx) has its own allowance
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.3", 0))
    async with aiohttp.ClientSession(connector=connector) as other:
        async with other.get(f"{base}/api/auth/me") as resp:
            assert resp.status == 401
            assert int(resp.headers["RateLimit-Remaining"]) == 99


async def test_health_and_ready_through_nginx(two_replicas):
    _, public = two_replicas
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{public}/ready") as resp:
            assert resp.status == 200
        async with session.get(f"http://127.0.0.1:{public}/metrics") as resp:
            assert resp.status == 404  # metrics are not public
