"""Clients for the real-time tests: Socket.IO sockets from chosen source addresses, Yjs documents."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pycrdt
import socketio

from ..helpers import login, new_email, register


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def account(base_url: str, name: str = "User") -> Account:
    async with aiohttp.ClientSession(base_url=base_url) as http:
        user = await register(http, new_email(name.lower()), name=name)
        tokens = await login(http, user["email"])
    token = tokens["accessToken"]
    return Account(user["id"], user["email"], name, token)


async def create_board(base_url: str, owner: Account, members: dict[Account, str] | None = None,
                       title: str = "Board") -> str:
    """A board made through the REST API, with members added by email and role."""
    async with aiohttp.ClientSession(base_url=base_url, headers=owner.headers) as http:
        async with http.post("/api/boards", json={"title": title}) as resp:
            assert resp.status == 201, await resp.text()
            board_id = str((await resp.json())["board"]["id"])
        for member, role in (members or {}).items():
            async with http.post(f"/api/boards/{board_id}/members", json={"email": member.email, "role": role}) as r:
                assert r.status in (200, 201), await r.text()
    return board_id


@dataclass
class Socket:
    """A Socket.IO client bound to a source address, recording every event it receives."""

    client: socketio.AsyncClient
    http: aiohttp.ClientSession
    events: dict[str, list[Any]] = field(default_factory=dict)
    disconnects: list[str] = field(default_factory=list)

    def received(self, event: str) -> list[Any]:
        return self.events.setdefault(event, [])

    async def call(self, event: str, data: Any = None, timeout: float = 10) -> Any:
        return await self.client.call(event, data, timeout=timeout)

    async def close(self) -> None:
        if self.client.connected:
            await self.client.disconnect()
        await self.http.close()


async def open_socket(url: str, token: str | None, *, ip: str = "127.0.0.1", transports: list[str] | None = None,
                      reconnection: bool = False, events: tuple[str, ...] = ()) -> Socket:
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(ip, 0)))
    client = socketio.AsyncClient(http_session=http, reconnection=reconnection, reconnection_delay=0.2,
                                  reconnection_delay_max=1, handle_sigint=False)
    sock = Socket(client, http)
    for name in ("notification", "session_revoked", "presence", "board:update", "board:awareness", *events):
        client.on(name, _recorder(sock, name))
    client.on("disconnect", lambda reason=None: sock.disconnects.append(str(reason)))
    refusals: list[Any] = []
    client.on("connect_error", refusals.append)
    try:
        await client.connect(url, auth={"token": token} if token is not None else None, transports=transports,
                             wait_timeout=10)
    except socketio.exceptions.ConnectionError as exc:
        await http.close()
        # the server's reason ({"message": ...}) arrives as the connect_error event's data
        raise socketio.exceptions.ConnectionError(f"{exc}: {refusals}") from None
    except BaseException:
        await http.close()
        raise
    return sock


def _recorder(sock: Socket, name: str) -> Callable[..., None]:
    def record(*args: Any) -> None:
        sock.received(name).append(args[0] if len(args) == 1 else args)

    return record


def socket_count(metrics_text: str) -> int:
    match = re.search(r"^collabry_socketio_clients (\S+)$", metrics_text, re.M)
    return int(float(match.group(1))) if match else 0


async def sockets_per_replica(ports: list[int]) -> list[int]:
    async with aiohttp.ClientSession() as http:
        out = []
        for port in ports:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                out.append(socket_count(await resp.text()))
        return out


class Editor:
    """A Yjs document kept in step with a board through one socket."""

    def __init__(self, sock: Socket, board_id: str) -> None:
        self.sock = sock
        self.board_id = board_id
        self.doc = pycrdt.Doc()
        self.text = self.doc.get("content", type=pycrdt.Text)
        self.shapes = self.doc.get("shapes", type=pycrdt.Map)
        sock.client.on("board:update", self._remote)

    def _remote(self, data: dict[str, Any]) -> None:
        if data.get("boardId") == self.board_id:
            self.doc.apply_update(base64.b64decode(data["update"]))

    async def join(self) -> dict[str, Any]:
        ack = await self.sock.call("board:join", {"boardId": self.board_id})
        assert ack["ok"], ack
        self.doc.apply_update(base64.b64decode(ack["state"]))
        return ack

    async def edit(self, change: Callable[[Editor], None]) -> dict[str, Any]:
        before = self.doc.get_state()
        change(self)
        update = self.doc.get_update(before)
        return await self.sock.call("board:update", {"boardId": self.board_id,
                                                     "update": base64.b64encode(update).decode()})

    def content(self) -> tuple[str, dict[str, Any]]:
        return str(self.text), self.shapes.to_py() or {}


def content_of(state: bytes) -> tuple[str, dict[str, Any]]:
    doc = pycrdt.Doc()
    doc.apply_update(state)
    return str(doc.get("content", type=pycrdt.Text)), doc.get("shapes", type=pycrdt.Map).to_py() or {}
