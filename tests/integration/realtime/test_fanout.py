"""Room broadcasts written directly to the websockets (gateway/realtime/fanout.py), across two replicas.

Each broadcast must reach every socket admitted to the room exactly once, in the order sent, never
the sender (``skip_sid``) nor a socket outside the room; a polling client gets it the normal way.
The delivery counter shows which path carried them.
"""

from __future__ import annotations

import base64
import re

import aiohttp
from aiohttp import WSMsgType, web

from collabry.devstack.components import free_port
from collabry.gateway.realtime.fanout import text_frame
from tests.support.eventually import eventually

from .support import Socket, account, create_board, open_socket, sockets_per_replica

BROADCASTS = 30


async def deliveries(ports: list[int]) -> dict[str, int]:
    """``collabry_socketio_deliveries_total`` by path, summed over the replicas."""
    out = {"direct": 0, "queued": 0}
    async with aiohttp.ClientSession() as http:
        for port in ports:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                text = await resp.text()
            for path, value in re.findall(r'^collabry_socketio_deliveries_total\{path="(\w+)"\} (\S+)$', text, re.M):
                out[path] += int(float(value))
    return out


def seqs(sock: Socket, board: str) -> list[int]:
    return [int(base64.b64decode(e["update"])) for e in sock.received("board:awareness") if e["boardId"] == board]


async def spread(cluster, token: str, count: int, first_ip: int, transports: list[str] | None = None) -> list[Socket]:
    """``count`` sockets from distinct source addresses, so nginx spreads them over both replicas."""
    return [await open_socket(cluster.url, token, ip=f"127.0.0.{first_ip + i}", transports=transports)
            for i in range(count)]


async def send_all(sender: Socket, board: str) -> None:
    for seq in range(BROADCASTS):
        update = base64.b64encode(str(seq).encode()).decode()
        assert (await sender.call("board:awareness", {"boardId": board, "update": update})) == {"ok": True}


async def test_each_broadcast_reaches_every_room_socket_once_in_order(cluster):
    owner = await account(cluster.url, "Owner")
    editor = await account(cluster.url, "Editor")
    stranger = await account(cluster.url, "Stranger")
    board = await create_board(cluster.url, owner, {editor: "editor"})
    socks = await spread(cluster, editor.token, 10, first_ip=40)
    sender = await open_socket(cluster.url, owner.token, ip="127.0.0.60")
    outsider = await open_socket(cluster.url, stranger.token, ip="127.0.0.61")  # not admitted to the board
    other_board_member = await open_socket(cluster.url, owner.token, ip="127.0.0.62")  # in the user room only
    try:
        await eventually(lambda: all(s.client.transport() == "websocket" for s in [*socks, sender]),
                         what="websocket upgrade")
        per_replica = await sockets_per_replica(cluster.ports)
        assert all(n >= 3 for n in per_replica), per_replica  # receivers on both replicas
        for s in [*socks, sender]:
            assert (await s.call("board:join", {"boardId": board}))["ok"]
        refused = await outsider.call("board:join", {"boardId": board})
        assert refused["ok"] is False
        before = await deliveries(cluster.ports)
        await send_all(sender, board)
        await eventually(lambda: all(len(seqs(s, board)) >= BROADCASTS for s in socks), what="every broadcast")
        # one more round trip through each socket: a duplicate written behind the last one shows up
        for s in socks:
            await s.call("board:leave", {"boardId": "0" * 24})
        for s in socks:
            assert seqs(s, board) == list(range(BROADCASTS)), seqs(s, board)  # once each, in order
        assert seqs(sender, board) == []  # skip_sid: not echoed to the sender
        assert seqs(outsider, board) == []
        assert seqs(other_board_member, board) == []
        after = await deliveries(cluster.ports)
        assert after["direct"] - before["direct"] >= BROADCASTS * len(socks)
    finally:
        for s in [*socks, sender, outsider, other_board_member]:
            await s.close()


async def test_polling_clients_receive_broadcasts_next_to_websocket_ones(cluster):
    owner = await account(cluster.url, "Owner")
    editor = await account(cluster.url, "Editor")
    board = await create_board(cluster.url, owner, {editor: "editor"})
    polling = await spread(cluster, editor.token, 6, first_ip=70, transports=["polling"])
    websocket = await spread(cluster, editor.token, 4, first_ip=80)
    sender = await open_socket(cluster.url, owner.token, ip="127.0.0.90")
    try:
        assert all(s.client.transport() == "polling" for s in polling)
        per_replica = await sockets_per_replica(cluster.ports)
        assert all(n > 0 for n in per_replica), per_replica
        for s in [*polling, *websocket, sender]:
            assert (await s.call("board:join", {"boardId": board}))["ok"]
        before = await deliveries(cluster.ports)
        await send_all(sender, board)
        receivers = [*polling, *websocket]
        await eventually(lambda: all(len(seqs(s, board)) >= BROADCASTS for s in receivers), what="every broadcast")
        for s in receivers:
            await s.call("board:leave", {"boardId": "0" * 24})
        for s in receivers:
            assert seqs(s, board) == list(range(BROADCASTS)), seqs(s, board)
        assert seqs(sender, board) == []
        after = await deliveries(cluster.ports)
        assert after["queued"] - before["queued"] >= BROADCASTS * len(polling)
    finally:
        for s in [*polling, *websocket, sender]:
            await s.close()


async def test_text_frame_is_read_by_a_websocket_client():
    """Frames of every length encoding, written to the transport as the fast path does."""
    sizes = [0, 125, 126, 65535, 65536, 200_000]

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        assert request.transport is not None
        for size in sizes:
            request.transport.write(text_frame(("x" * size).encode()))
        await ws.receive()  # until the client closes
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"http://127.0.0.1:{port}/") as ws:
            for size in sizes:
                msg = await ws.receive(timeout=10)
                assert msg.type == WSMsgType.TEXT
                assert msg.data == "x" * size
    finally:
        await runner.cleanup()
