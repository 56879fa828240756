"""Reading Server-Sent Events as a browser's EventSource would, with arrival times."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class Event:
    id: int
    event: str
    data: dict[str, Any]
    at: float  # time.monotonic() of arrival


@dataclass
class Read:
    events: list[Event]
    comments: list[tuple[str, float]]
    retry: int | None
    ended: bool  # the server closed the stream (as opposed to the reader stopping early)


async def read_sse(resp: aiohttp.ClientResponse, *, stop_after: int | None = None) -> Read:
    """Parse ``resp`` until it ends, or until ``stop_after`` events have arrived."""
    events: list[Event] = []
    comments: list[tuple[str, float]] = []
    retry = None
    fields: dict[str, str] = {}
    ended = False
    try:
        while True:
            raw = await resp.content.readline()
            if not raw:
                ended = True
                break
            line = raw.decode().rstrip("\n")
            now = time.monotonic()
            if line.startswith(":"):
                comments.append((line, now))
            elif line.startswith("retry:"):
                retry = int(line.split(":", 1)[1])
            elif line:
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value
            elif "event" in fields:
                events.append(Event(int(fields["id"]), fields["event"], json.loads(fields["data"]), now))
                fields = {}
                if stop_after is not None and len(events) >= stop_after:
                    break
    except aiohttp.ClientPayloadError:
        ended = True  # the connection broke (a killed replica)
        resp.close()
    return Read(events, comments, retry, ended)


def sse_headers(token: str, last_event_id: int | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    return headers
