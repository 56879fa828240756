"""Socket.IO through nginx across two gateway replicas: auth, user rooms, pushes, boards."""

from __future__ import annotations

import asyncio
import base64
import signal
import time

import aiohttp
import pycrdt
import pytest
import socketio

from collabry.realtime.emitter import Emitter
from tests.support.eventually import eventually

from .support import (
    Editor,
    account,
    content_of,
    create_board,
    open_socket,
    sockets_per_replica,
)


async def test_connect_needs_a_valid_token(cluster):
    user = await account(cluster.url)
    for auth in (None, "", "not-a-jwt", user.token[:-4] + "AAAA"):
        with pytest.raises(socketio.exceptions.ConnectionError) as refused:
            await open_socket(cluster.url, auth, ip="127.0.0.2")
        assert "unauthorized" in str(refused.value)
    sock = await open_socket(cluster.url, user.token, ip="127.0.0.2")
    assert sock.client.connected
    await sock.close()


async def test_clients_upgrade_and_spread_over_both_replicas(cluster):
    user = await account(cluster.url)
    socks = [await open_socket(cluster.url, user.token, ip=f"127.0.0.{i}") for i in range(2, 14)]
    try:
        # polling first (the default handshake), then the upgrade to websocket
        await eventually(lambda: all(s.client.transport() == "websocket" for s in socks), what="websocket upgrade")
        per_replica = await sockets_per_replica(cluster.ports)
        assert sum(per_replica) == len(socks)
        assert all(n > 0 for n in per_replica), per_replica
    finally:
        for s in socks:
            await s.close()
    await eventually(lambda: _total(cluster), what="sockets to be gone")


async def _total(cluster) -> bool:
    return sum(await sockets_per_replica(cluster.ports)) == 0


async def _socket_on(cluster, token: str, replica: int, first_ip: int = 2) -> tuple:
    """A socket through nginx that landed on ``replica`` (source addresses tried in turn)."""
    for i in range(first_ip, first_ip + 40):
        before = await sockets_per_replica(cluster.ports)
        sock = await open_socket(cluster.url, token, ip=f"127.0.0.{i}")
        after = await sockets_per_replica(cluster.ports)
        if after[replica] > before[replica]:
            return sock, i
        await sock.close()
    raise AssertionError(f"no source address hashed to replica {replica}")


async def test_board_update_from_replica_a_reaches_a_client_on_b(cluster, mongo):
    owner = await account(cluster.url, "Owner")
    editor = await account(cluster.url, "Editor")
    board = await create_board(cluster.url, owner, {editor: "editor"})
    a, ip_a = await _socket_on(cluster, owner.token, 0)
    b, _ = await _socket_on(cluster, editor.token, 1, first_ip=ip_a + 1)
    try:
        ea, eb = Editor(a, board), Editor(b, board)
        await ea.join()
        joined = await eb.join()
        assert {p["id"] for p in joined["peers"]} == {owner.id, editor.id}
        await eventually(lambda: any(len(p["users"]) == 2 for p in a.received("presence")), what="presence on A")
        ack = await ea.edit(lambda e: e.text.insert(0, "hello from A"))
        assert ack == {"ok": True}
        await eventually(lambda: str(eb.text) == "hello from A", what="the update on replica B")
        assert a.received("board:update") == []  # not echoed to the sender
        ack = await eb.edit(lambda e: e.shapes.__setitem__("rect", {"x": 1, "y": 2}))
        assert ack == {"ok": True}
        await eventually(lambda: ea.content() == eb.content(), what="B's update on replica A")
        # awareness is relayed, not stored
        cursor = base64.b64encode(b"\x01\x02cursor").decode()
        assert (await a.call("board:awareness", {"boardId": board, "update": cursor})) == {"ok": True}
        await eventually(lambda: b.received("board:awareness") == [{"boardId": board, "update": cursor}],
                         what="awareness relay")
        assert mongo["board_updates"].count_documents({"board_id": board}) == 2
        # leaving updates everyone's presence list
        assert (await b.call("board:leave", {"boardId": board})) == {"ok": True}
        await eventually(lambda: a.received("presence")[-1]["users"] == [{"id": owner.id, "name": "Owner"}],
                         what="presence after leave")
    finally:
        await a.close()
        await b.close()


async def test_worker_notification_reaches_the_users_sockets(cluster, settings):
    user = await account(cluster.url)
    other = await account(cluster.url)
    # The user on both replicas (which one a source address lands on depends on the ports' hash),
    # and a few more sockets wherever they land.
    on_a, ip_a = await _socket_on(cluster, user.token, 0, first_ip=20)
    on_b, ip_b = await _socket_on(cluster, user.token, 1, first_ip=ip_a + 1)
    more = [await open_socket(cluster.url, user.token, ip=f"127.0.0.{i}") for i in range(ip_b + 1, ip_b + 5)]
    socks = [on_a, on_b, *more]
    bystander = await open_socket(cluster.url, other.token, ip="127.0.0.200")
    emitter = Emitter(settings)  # the worker's way: a write-only Redis manager, no server
    try:
        assert all(n > 0 for n in await sockets_per_replica(cluster.ports))
        payload = {"id": "n1", "type": "task_due_soon", "title": "Due soon", "body": "Essay"}
        await emitter.to_user(user.id, "notification", payload)
        await eventually(lambda: all(s.received("notification") == [payload] for s in socks),
                         what="the notification on every socket of the user")
        await asyncio.sleep(0.2)  # give a misrouted copy time to show up before asserting its absence
        assert bystander.received("notification") == []
    finally:
        await emitter.close()
        for s in [*socks, bystander]:
            await s.close()


async def test_logout_all_revokes_and_disconnects_sockets_on_every_replica(cluster):
    user = await account(cluster.url)
    a, ip_a = await _socket_on(cluster, user.token, 0)
    b, _ = await _socket_on(cluster, user.token, 1, first_ip=ip_a + 1)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{cluster.url}/api/auth/logout-all", headers=user.headers) as resp:
                assert resp.status == 204
        for s in (a, b):
            await eventually(lambda s=s: not s.client.connected, what="server-side disconnect")
            assert s.received("session_revoked") == [{"reason": "logout_all"}]
        # the access token is still unexpired, but its session is gone
        with pytest.raises(socketio.exceptions.ConnectionError, match="unauthorized"):
            await open_socket(cluster.url, user.token, ip="127.0.0.40")
    finally:
        await a.close()
        await b.close()


async def test_twenty_clients_converge_and_the_stored_board_survives_restarts(cluster, mongo):
    users = [await account(cluster.url, f"U{i}") for i in range(5)]
    board = await create_board(cluster.url, users[0], {u: "editor" for u in users[1:]})
    socks = [await open_socket(cluster.url, users[i % 5].token, ip=f"127.0.0.{10 + i}") for i in range(20)]
    editors = [Editor(s, board) for s in socks]
    try:
        assert all(n > 0 for n in await sockets_per_replica(cluster.ports))
        await asyncio.gather(*(e.join() for e in editors))

        async def typing(n: int, e: Editor) -> None:
            for k in range(8):
                def change(ed: Editor, k: int = k) -> None:
                    ed.text.insert((n * 7 + k * 3) % (len(ed.text) + 1), f"[{n}.{k}]")
                    ed.shapes[f"s{n}"] = {"k": k, "by": n}
                    if k == 2:
                        ed.shapes[f"tmp{n}"] = k
                    if k == 5:
                        del ed.shapes[f"tmp{n}"]

                assert (await e.edit(change)) == {"ok": True}

        await asyncio.gather(*(typing(n, e) for n, e in enumerate(editors)))
        first = editors[0]
        await eventually(lambda: all(e.content() == first.content() for e in editors), timeout=20,
                         what="all 20 documents to converge")
        text, shapes = first.content()
        # nothing lost: every inserted character is there (interleaved), every last write won
        assert sorted(text) == sorted("".join(f"[{n}.{k}]" for n in range(20) for k in range(8)))
        assert shapes == {f"s{n}": {"k": 7, "by": n} for n in range(20)}
        assert mongo["board_updates"].count_documents({"board_id": board}) == 160
    finally:
        for s in socks:
            await s.close()
    for proc in cluster.replicas:
        proc.stop(timeout=15)
    for i in range(2):
        cluster.start(i)
    fresh = Editor(await open_socket(cluster.url, users[0].token, ip="127.0.0.99"), board)
    try:
        await fresh.join()
        assert fresh.content() == (text, shapes)
    finally:
        await fresh.sock.close()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{cluster.url}/api/boards/{board}/snapshot", headers=users[3].headers) as resp:
            assert resp.status == 200
            assert content_of(await resp.read()) == (text, shapes)


async def test_viewer_reads_but_cannot_write(cluster, mongo):
    owner = await account(cluster.url)
    viewer = await account(cluster.url)
    board = await create_board(cluster.url, owner, {viewer: "viewer"})
    sock = await open_socket(cluster.url, viewer.token, ip="127.0.0.50")
    try:
        ed = Editor(sock, board)
        await ed.join()
        ack = await ed.edit(lambda e: e.text.insert(0, "vandalism"))
        assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
        assert mongo["board_updates"].count_documents({"board_id": board}) == 0
        # awareness (a cursor) is fine for a viewer
        assert (await sock.call("board:awareness", {"boardId": board, "update": "AQI="})) == {"ok": True}
    finally:
        await sock.close()


def _junk_updates() -> dict[str, str]:
    doc = pycrdt.Doc()
    doc.get("content", type=pycrdt.Text).insert(0, "ok")
    good = doc.get_update()
    return {
        "not base64": "%%%not base64%%%",
        "random bytes": base64.b64encode(b"\xff\xfe\x00\x13junk").decode(),
        "huge count": base64.b64encode(b"\xb7\x9a\xaa\x7b\x3a\xe4\x9d\x9a").decode(),
        "truncated": base64.b64encode(good[:-3]).decode(),
        "trailing bytes": base64.b64encode(good + b"\x07").decode(),
    }


async def test_bad_input_gets_error_acks_and_never_harms_the_board(cluster, mongo):
    owner = await account(cluster.url)
    stranger = await account(cluster.url)
    board = await create_board(cluster.url, owner)
    sock = await open_socket(cluster.url, owner.token, ip="127.0.0.60")
    intruder = await open_socket(cluster.url, stranger.token, ip="127.0.0.61")
    try:
        ed = Editor(sock, board)
        await ed.join()
        assert (await ed.edit(lambda e: e.text.insert(0, "kept"))) == {"ok": True}

        async def code(s, event, data=None):
            ack = await s.call(event, data)
            assert ack["ok"] is False, ack
            return ack["error"]["code"]

        # membership and identity come from the server, never from the payload
        assert await code(intruder, "board:join", {"boardId": board}) == "not_found"
        assert await code(intruder, "board:update", {"boardId": board, "update": "AAA="}) == "not_joined"
        assert await code(sock, "board:join", {"boardId": board, "userId": stranger.id}) == "invalid_request"
        assert await code(sock, "board:update", {"boardId": board, "update": "AAA=", "userId": stranger.id}) \
            == "invalid_request"
        assert await code(sock, "board:join", {"boardId": "../../etc"}) == "invalid_request"
        assert await code(sock, "board:join", "a string") == "invalid_request"
        assert await code(sock, "board:join", [1, 2]) == "invalid_request"
        assert await code(sock, "board:join") == "invalid_request"
        assert await code(sock, "no:such:event", {"x": 1}) == "unknown_event"
        for name, update in _junk_updates().items():
            assert await code(sock, "board:update", {"boardId": board, "update": update}) == "invalid_update", name
        oversized = base64.b64encode(b"\x00" * 300_000).decode()
        assert await code(sock, "board:update", {"boardId": board, "update": oversized}) == "too_large"
        assert await code(sock, "board:awareness", {"boardId": board, "update": "A" * 20_000}) == "too_large"
        # the board still loads and holds exactly the accepted edit
        assert mongo["board_updates"].count_documents({"board_id": board}) == 1
        check = Editor(await open_socket(cluster.url, owner.token, ip="127.0.0.62"), board)
        await check.join()
        assert check.content() == ("kept", {})
        await check.sock.close()
        # a message over the transport limit closes that connection only
        big = await open_socket(cluster.url, owner.token, ip="127.0.0.63")
        await big.client.emit("board:update", {"boardId": board, "update": "A" * (2 * 1024 * 1024)})
        await eventually(lambda: not big.client.connected, what="the oversized connection to close")
        await big.close()
        assert (await sock.call("board:join", {"boardId": board}))["ok"] is True
        for port in cluster.ports:
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/health") as resp:
                assert resp.status == 200
    finally:
        await sock.close()
        await intruder.close()


async def test_sigterm_moves_sockets_to_the_other_replica(cluster):
    user = await account(cluster.url)
    socks = [await open_socket(cluster.url, user.token, ip=f"127.0.0.{i}", reconnection=True) for i in range(80, 92)]
    try:
        per_replica = await sockets_per_replica(cluster.ports)
        assert per_replica[0] > 0 and per_replica[1] > 0
        stopping = time.monotonic()
        cluster.replicas[0].send(signal.SIGTERM)
        # the replica closes its transports at once instead of waiting out the drain budget (10 s here)
        await eventually(lambda: not cluster.replicas[0].running, timeout=8, what="the replica to exit")
        assert cluster.replicas[0].proc.returncode == 0
        assert time.monotonic() - stopping < 5
        await eventually(lambda: all(s.client.connected for s in socks), timeout=15, what="reconnection")
        assert (await sockets_per_replica(cluster.ports[1:])) == [len(socks)]
        # and they still get their pushes
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{cluster.url}/api/auth/logout-all", headers=user.headers) as resp:
                assert resp.status == 204
        await eventually(lambda: all(s.received("session_revoked") for s in socks), what="pushes after the move")
    finally:
        for s in socks:
            await s.close()
