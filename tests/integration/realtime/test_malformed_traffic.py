"""Junk and binary Socket.IO traffic through nginx: the connection is dropped, the log stays short."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from .support import account


async def _engineio(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket")
    opened = await ws.receive_str(timeout=10)
    assert opened.startswith("0{"), opened
    return ws


async def _closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[str]:
    """Read until the server closes the websocket; fail if it is still open after ``seconds``."""
    seen: list[str] = []
    try:
        async with asyncio.timeout(seconds):
            while not ws.closed:
                msg = await ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    break
                seen.append(str(msg.data))
    except TimeoutError:
        raise AssertionError(f"still open; received {seen}") from None
    return seen


def _log_size(cluster) -> int:
    return sum(p.log_path.stat().st_size for p in cluster.replicas)


async def test_junk_frames_without_connect_drop_the_connection_quietly(cluster):
    async with aiohttp.ClientSession() as http:
        before = _log_size(cluster)
        ws = await _engineio(http, cluster.url)
        for frame in ("4junk!!", "4{]", '42["board:join",{}]', "4" + "[" * 5000):
            if ws.closed:
                break
            await ws.send_str(frame)
        await _closed_within(ws, 5)
        ws = await _engineio(http, cluster.url)
        await ws.send_str("xjunk")  # not even an Engine.IO packet
        await _closed_within(ws, 5)
    await asyncio.sleep(0.2)  # the access line of the closed request is written after the close
    grown = _log_size(cluster) - before
    text = "".join(p.log_path.read_text(errors="replace") for p in cluster.replicas)
    assert "Traceback" not in text
    assert grown < 2000, grown
    assert "socket_dropped" in text


async def test_binary_attachments_are_refused(cluster):
    user = await account(cluster.url)
    async with aiohttp.ClientSession() as http:
        for attack in ("header", "frame"):
            ws = await _engineio(http, cluster.url)
            await ws.send_str("40" + json.dumps({"token": user.token}))
            connected = await ws.receive_str(timeout=10)
            assert connected.startswith("40{"), connected
            if attack == "header":
                # a packet announcing 1,000 attachments: nothing is buffered, the connection ends
                await ws.send_str('451000-["board:update",{"_placeholder":true,"num":0}]')
            else:
                await ws.send_bytes(b"\x04" + b"x" * 1000)
            await _closed_within(ws, 5)
