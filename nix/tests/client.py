"""Client-side checks the NixOS VM tests run inside a node: an AI answer over SSE (with arrival
times, to see that it arrives incrementally), resuming an answer with Last-Event-ID, and Socket.IO
through nginx against several gateway replicas. Prints one JSON object; the testScript asserts.

    collabry-test-client chat --base http://proxy --token T --message "..." [--stop-after-tokens N]
    collabry-test-client resume --base http://proxy --token T --stream-id S --last-event-id N
    collabry-test-client socketio --base http://localhost --direct http://127.0.0.1:8001 ... --token T
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import sys
import time
from typing import Any

import aiohttp
import socketio

TIMEOUT = aiohttp.ClientTimeout(total=300, sock_read=120)


async def read_sse(resp: aiohttp.ClientResponse, stop_after_tokens: int | None, t0: float) -> list[dict[str, Any]]:
    """Parse `text/event-stream` as it arrives; each event carries the time its last line came in."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    data_lines: list[str] = []
    tokens = 0
    async for raw in resp.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith(":"):
            continue
        if line:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data_lines.append(value)
            elif field in ("id", "event"):
                current[field] = value
            continue
        if not current and not data_lines:
            continue
        text = "\n".join(data_lines)
        try:
            data: Any = json.loads(text) if text else None
        except ValueError:
            data = text
        event = {
            "id": int(current["id"]) if current.get("id", "").isdigit() else current.get("id"),
            "event": current.get("event", "message"),
            "data": data,
            "t": round(time.monotonic() - t0, 4),
        }
        events.append(event)
        current, data_lines = {}, []
        if event["event"] == "token":
            tokens += 1
            if stop_after_tokens is not None and tokens >= stop_after_tokens:
                break
        if event["event"] in ("done", "error"):
            break
    return events


async def chat(args: argparse.Namespace) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {args.token}", "Accept": "text/event-stream"}
    body = {"message": args.message}
    t0 = time.monotonic()
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(f"{args.base}/api/ai/chat", json=body, headers=headers) as resp,
    ):
        out: dict[str, Any] = {
            "status": resp.status,
            "contentType": resp.headers.get("Content-Type", ""),
            "requestId": resp.headers.get("X-Request-ID"),
        }
        if resp.status != 200:
            out["body"] = (await resp.text())[:2000]
            return out
        out["events"] = await read_sse(resp, args.stop_after_tokens, t0)
    return out


async def resume(args: argparse.Namespace) -> dict[str, Any]:
    headers = {
        "Authorization": f"Bearer {args.token}",
        "Accept": "text/event-stream",
        "Last-Event-ID": str(args.last_event_id),
    }
    t0 = time.monotonic()
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.get(f"{args.base}/api/ai/streams/{args.stream_id}", headers=headers) as resp,
    ):
        out: dict[str, Any] = {"status": resp.status}
        if resp.status != 200:
            out["body"] = (await resp.text())[:2000]
            return out
        out["events"] = await read_sse(resp, None, t0)
    return out


def yjs_update(text: str) -> str:
    """A real Yjs update (base64), made with pycrdt like any other Yjs client would."""
    from pycrdt import Doc, Text

    doc = Doc()
    doc["content"] = shared = Text()
    shared += text
    return base64.b64encode(doc.get_update()).decode()


async def socketio_check(args: argparse.Namespace) -> dict[str, Any]:
    """Client 0 connects through nginx (polling, then websocket upgrade: needs the sticky upstream),
    the others straight to a replica each. All join one board; the last one sends an update;
    everyone else must receive it, whichever replica holds their connection."""
    headers = {"Authorization": f"Bearer {args.token}"}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.post(f"{args.base}/api/boards", json={"title": "vm test"}, headers=headers) as resp:
            created = await resp.json()
            assert resp.status == 201, created
        board_id = created["board"]["id"]

    urls = [args.base, *args.direct]
    clients: list[socketio.AsyncClient] = []
    received: list[list[dict[str, Any]]] = [[] for _ in urls]
    presence: list[list[Any]] = [[] for _ in urls]
    out: dict[str, Any] = {"boardId": board_id, "urls": urls}
    everyone_got_it = asyncio.Event()

    for i, url in enumerate(urls):
        client = socketio.AsyncClient(reconnection=False)

        def on_update(data: Any, i: int = i) -> None:
            received[i].append(data)
            if all(received[j] for j in range(len(urls) - 1)):
                everyone_got_it.set()

        def on_presence(data: Any, i: int = i) -> None:
            presence[i].append(data)

        client.on("board:update", on_update)
        client.on("presence", on_presence)
        await client.connect(url, auth={"token": args.token}, socketio_path="socket.io", wait_timeout=20)
        clients.append(client)
    out["transports"] = [c.transport() for c in clients]

    acks = [await c.call("board:join", {"boardId": board_id}, timeout=20) for c in clients]
    out["joinAcks"] = [{"ok": a.get("ok"), "error": a.get("error")} for a in acks]
    update = yjs_update("written on one replica, read on all of them")
    ack = await clients[-1].call("board:update", {"boardId": board_id, "update": update}, timeout=20)
    out["updateAck"] = ack
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(everyone_got_it.wait(), timeout=20)
    out["received"] = [
        [{"boardId": d.get("boardId"), "sameUpdate": d.get("update") == update} for d in r] for r in received
    ]
    out["presence"] = [len(p) for p in presence]
    for c in clients:
        await c.disconnect()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="collabry-test-client")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("chat")
    p.add_argument("--base", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--message", default="Say hello to the study group in one sentence.")
    p.add_argument("--stop-after-tokens", type=int)
    p.set_defaults(run=chat)
    p = sub.add_parser("resume")
    p.add_argument("--base", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--stream-id", required=True)
    p.add_argument("--last-event-id", type=int, required=True)
    p.set_defaults(run=resume)
    p = sub.add_parser("socketio")
    p.add_argument("--base", required=True)
    p.add_argument("--direct", action="append", default=[])
    p.add_argument("--token", required=True)
    p.set_defaults(run=socketio_check)
    args = parser.parse_args()
    result = asyncio.run(args.run(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
