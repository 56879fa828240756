"""Losing access takes effect on live sockets at once, on every replica, through nginx.

A removed member, or every member of a deleted board, leaves the board's room; a logout, a deleted
session or a reused refresh token disconnects that session's sockets and stops its access token;
a departed client's awareness (cursor) is cleared for the others.
"""

from __future__ import annotations

import base64

import aiohttp
import pytest
import socketio

from collabry.gateway.realtime.payloads import awareness_entries
from tests.support.eventually import eventually

from .support import Editor, account, create_board, open_socket, sockets_per_replica


async def _socket_on(cluster, token: str, replica: int, first_ip: int = 2, events=("board:removed",)):
    """A socket through nginx that landed on ``replica`` (source addresses tried in turn)."""
    for i in range(first_ip, first_ip + 40):
        before = await sockets_per_replica(cluster.ports)
        sock = await open_socket(cluster.url, token, ip=f"127.0.0.{i}", events=events)
        after = await sockets_per_replica(cluster.ports)
        if after[replica] > before[replica]:
            return sock, i
        await sock.close()
    raise AssertionError(f"no source address hashed to replica {replica}")


def _awareness(client: int, clock: int, state: str) -> str:
    raw = bytes([1, client, clock, len(state)]) + state.encode()
    return base64.b64encode(raw).decode()


async def test_removed_member_and_deleted_board_stop_the_live_relay(cluster):
    owner = await account(cluster.url, "Owner")
    kept = await account(cluster.url, "Kept")
    removed = await account(cluster.url, "Removed")
    board = await create_board(cluster.url, owner, {kept: "editor", removed: "editor"})
    o, ip = await _socket_on(cluster, owner.token, 0)
    k, ip = await _socket_on(cluster, kept.token, 1, first_ip=ip + 1)
    r, _ = await _socket_on(cluster, removed.token, 1, first_ip=ip + 1)  # silent after joining
    try:
        eo, ek, er = Editor(o, board), Editor(k, board), Editor(r, board)
        for e in (eo, ek, er):
            await e.join()
        async with aiohttp.ClientSession(base_url=cluster.url, headers=owner.headers) as http:
            async with http.delete(f"/api/boards/{board}/members/{removed.id}") as resp:
                assert resp.status == 204
        await eventually(lambda: r.received("board:removed") == [{"boardId": board}], what="board:removed")
        assert (await eo.edit(lambda e: e.text.insert(0, "secret"))) == {"ok": True}
        cursor = _awareness(9, 1, '{"x":1}')
        assert (await o.call("board:awareness", {"boardId": board, "update": cursor})) == {"ok": True}
        await eventually(lambda: str(ek.text) == "secret" and k.received("board:awareness"), what="relay to kept")
        assert r.received("board:update") == [] and r.received("board:awareness") == []
        assert str(er.text) == ""
        ack = await r.call("board:update", {"boardId": board, "update": base64.b64encode(b"\x00\x00").decode()})
        assert ack["ok"] is False
        # deleting the board takes everyone else out of the room as well
        async with aiohttp.ClientSession(base_url=cluster.url, headers=owner.headers) as http:
            async with http.delete(f"/api/boards/{board}") as resp:
                assert resp.status == 204
        await eventually(lambda: k.received("board:removed") == [{"boardId": board}], what="removed on delete")
        assert o.received("board:removed") == [{"boardId": board}]
        updates_before = len(k.received("board:update"))
        ack = await o.call("board:awareness", {"boardId": board, "update": cursor})
        assert ack["ok"] is False
        assert len(k.received("board:update")) == updates_before
    finally:
        for s in (o, k, r):
            await s.close()


async def test_logout_session_delete_and_reuse_end_that_sessions_sockets(cluster):
    user = await account(cluster.url)
    async with aiohttp.ClientSession(base_url=cluster.url) as http:
        logins = []
        for _ in range(3):
            async with http.post("/api/auth/login", json={"email": user.email, "password": "correct horse 42"}) as r:
                assert r.status == 200
                logins.append(await r.json())
        a, ip = await _socket_on(cluster, logins[0]["accessToken"], 0)
        b, ip = await _socket_on(cluster, logins[1]["accessToken"], 1, first_ip=ip + 1)
        c, ip = await _socket_on(cluster, logins[2]["accessToken"], 1, first_ip=ip + 1)
        other, _ = await _socket_on(cluster, user.token, 0, first_ip=ip + 1)
        try:
            # logout of session A (through whichever replica), its socket on replica 0 goes
            bearer = {"Authorization": f"Bearer {logins[0]['accessToken']}"}
            async with http.post("/api/auth/logout", headers=bearer) as resp:
                assert resp.status == 204
            await eventually(lambda: not a.client.connected, what="logout disconnects")
            assert a.received("session_revoked") == [{"reason": "logout"}]
            async with http.get("/api/auth/me", headers=bearer) as resp:
                assert resp.status == 401  # the access token of a revoked session stops at once
            # session B deleted from another session
            sessions_b = {"Authorization": f"Bearer {logins[2]['accessToken']}"}
            async with http.get("/api/auth/sessions", headers=sessions_b) as resp:
                ids = {s["id"] for s in (await resp.json())["sessions"]}
            session_of_b = await _session_of(http, logins[1]["accessToken"])
            assert session_of_b in ids
            async with http.delete(f"/api/auth/sessions/{session_of_b}", headers=sessions_b) as resp:
                assert resp.status == 204
            await eventually(lambda: not b.client.connected, what="session delete disconnects")
            assert b.received("session_revoked") == [{"reason": "revoked"}]
            async with http.get("/api/auth/me", headers={"Authorization": f"Bearer {logins[1]['accessToken']}"}) as r:
                assert r.status == 401
            # session C's refresh token replayed: reuse detection ends the family and its socket
            async with http.post("/api/auth/refresh", json={"refreshToken": logins[2]["refreshToken"]}) as resp:
                assert resp.status == 200
            async with http.post("/api/auth/refresh", json={"refreshToken": logins[2]["refreshToken"]}) as resp:
                assert resp.status == 401 and (await resp.json())["error"]["code"] == "token_reused"
            await eventually(lambda: not c.client.connected, what="reuse disconnects")
            assert c.received("session_revoked") == [{"reason": "token_reused"}]
            with pytest.raises(socketio.exceptions.ConnectionError, match="unauthorized"):
                await open_socket(cluster.url, logins[2]["accessToken"], ip="127.0.0.60")
            # the user's other session is untouched
            assert other.client.connected and other.received("session_revoked") == []
            async with http.get("/api/auth/me", headers=user.headers) as resp:
                assert resp.status == 200
        finally:
            for s in (a, b, c, other):
                await s.close()


async def _session_of(http: aiohttp.ClientSession, token: str) -> str:
    async with http.get("/api/auth/sessions", headers={"Authorization": f"Bearer {token}"}) as resp:
        return next(s["id"] for s in (await resp.json())["sessions"] if s["current"])


async def test_awareness_of_a_departed_client_is_cleared(cluster):
    owner = await account(cluster.url, "Owner")
    peer = await account(cluster.url, "Peer")
    board = await create_board(cluster.url, owner, {peer: "editor"})
    o, ip = await _socket_on(cluster, owner.token, 0)
    p, ip = await _socket_on(cluster, peer.token, 1, first_ip=ip + 1)
    p2, _ = await _socket_on(cluster, peer.token, 0, first_ip=ip + 1)
    try:
        for s in (o, p, p2):
            await Editor(s, board).join()
        # the peer's cursor on one socket, then a leave: cleared for the owner
        assert (await p.call("board:awareness", {"boardId": board, "update": _awareness(7, 3, '{"c":1}')}))["ok"]
        await eventually(lambda: len(o.received("board:awareness")) == 1, what="cursor relayed")
        assert (await p.call("board:leave", {"boardId": board})) == {"ok": True}
        await eventually(lambda: len(o.received("board:awareness")) == 2, what="cursor cleared on leave")
        cleared = base64.b64decode(o.received("board:awareness")[1]["update"])
        assert awareness_entries(cleared) == [(7, 4, True)]
        # and on disconnect (another socket, another replica)
        assert (await p2.call("board:awareness", {"boardId": board, "update": _awareness(8, 1, '{"c":2}')}))["ok"]
        await eventually(lambda: len(o.received("board:awareness")) == 3, what="second cursor relayed")
        await p2.close()
        await eventually(lambda: len(o.received("board:awareness")) == 4, what="cursor cleared on disconnect")
        cleared = base64.b64decode(o.received("board:awareness")[3]["update"])
        assert awareness_entries(cleared) == [(8, 2, True)]
    finally:
        for s in (o, p, p2):
            await s.close()
