"""Per-connection event budgets on the real replicas (a small budget set through the environment)."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import REPLICA_ENV
from .support import account, create_board, open_socket


@pytest.fixture
def cluster_env():
    return {**REPLICA_ENV, "COLLABRY_SOCKET_EVENT_LIMIT": "40/10"}


async def test_event_flood_gets_rate_limited_acks(cluster):
    owner = await account(cluster.url)
    board = await create_board(cluster.url, owner)
    sock = await open_socket(cluster.url, owner.token, ip="127.0.0.70")
    calm = await open_socket(cluster.url, owner.token, ip="127.0.0.71")
    try:
        assert (await sock.call("board:join", {"boardId": board}))["ok"]
        acks = await asyncio.gather(*(sock.call("board:awareness", {"boardId": board, "update": "AQI="})
                                      for _ in range(200)))
        codes = [a["error"]["code"] if not a["ok"] else "ok" for a in acks]
        assert codes.count("ok") <= 41 and codes.count("rate_limited") >= 159, codes
        # the budget is per connection: another socket of the same user is unaffected
        assert (await calm.call("board:join", {"boardId": board}))["ok"]
        assert sock.client.connected
    finally:
        await sock.close()
        await calm.close()
