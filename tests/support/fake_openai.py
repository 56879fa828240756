"""A stand-in for a paid OpenAI-compatible API, speaking the real protocol over real HTTP.

The engine's unmodified ``openai`` client talks to it. It runs on its own thread and event loop,
so it keeps answering while a test blocks (for example while a fixture waits for a process).

- ``GET /v1/models``; ``POST /v1/chat/completions`` (streamed as SSE ``data:`` chunks ending with
  ``data: [DONE]``, or as one JSON answer); ``POST /v1/embeddings`` (deterministic vectors).
- Every request body is recorded (``requests``, ``chat_requests``) so tests can assert on exactly
  what was sent, e.g. that a passage never reaches the system message.
- Replies are scripted with ``push(Reply(...))`` (first in, first out); without a script each chat
  request gets ``responder(body)`` when a responder is set (and answers), else ``default_text``.
  A reply can fail with an HTTP status, drop the connection after
  some tokens (``fail_after``), wait before the first token or between tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    text: str = "The sources say so [1]."
    status: int = 200  # a non-200 status answers with an OpenAI-style error body instead
    pieces: int | None = None  # number of token chunks (default: one per word)
    fail_after: int | None = None  # drop the connection after this many token chunks
    first_delay: float = 0.0  # seconds before the first chunk
    delay: float = 0.0  # seconds between chunks
    finish_reason: str = "stop"
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 10, "completion_tokens": 5})


class FakeOpenAI:
    def __init__(self, *, default_text: str = "The sources say so [1].") -> None:
        self.default_text = default_text
        # body -> reply text (None: the default), for replies that depend on the request
        self.responder: Callable[[dict[str, Any]], str | None] | None = None
        self.requests: list[dict[str, Any]] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.in_flight = 0
        self.disconnects = 0  # streams whose client went away before the end

    # -- control from the test ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r["body"] for r in self.requests if r["path"].endswith("/chat/completions")]

    def start(self) -> FakeOpenAI:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._serve())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=main, name="fake-openai", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake OpenAI server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    # -- the server -------------------------------------------------------------------------------

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _record(self, request: web.Request, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append({"path": request.path, "body": body, "headers": dict(request.headers)})

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        text = self.responder(body) if self.responder is not None else None
        return Reply(text=self.default_text if text is None else text)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "smollm2", "object": "model", "owned_by": "test"}]})

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": fake_vector(text)} for i, text in enumerate(inputs)]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model", ""),
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self._record(request, body)
        reply = self._next(body)
        if reply.status != 200:
            return web.json_response(
                {"error": {"message": f"scripted failure {reply.status}", "type": "server_error", "code": None}},
                status=reply.status,
            )
        if reply.first_delay:
            await asyncio.sleep(reply.first_delay)
        if not body.get("stream"):
            return web.json_response(_completion(body, reply))
        return await self._stream(request, body, reply)

    async def _stream(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        self.in_flight += 1
        try:
            for n, piece in enumerate(_pieces(reply), 1):
                await response.write(_sse(_chunk(body, {"content": piece}, None)))
                if reply.fail_after is not None and n >= reply.fail_after:
                    # Drop the connection mid-answer, as a crashed server would.
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                if reply.delay:
                    await asyncio.sleep(reply.delay)
            await response.write(_sse(_chunk(body, {}, reply.finish_reason)))
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {**reply.usage, "total_tokens": sum(reply.usage.values())}
                await response.write(_sse({**_chunk(body, {}, None), "choices": [], "usage": usage}))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        finally:
            self.in_flight -= 1
        return response


def _pieces(reply: Reply) -> list[str]:
    if reply.pieces is None:
        words = reply.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]
    size = max(1, -(-len(reply.text) // reply.pieces))
    return [reply.text[i : i + size] for i in range(0, len(reply.text), size)]


def _chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "smollm2"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "smollm2"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": reply.text}, "finish_reason": reply.finish_reason}
        ],
        "usage": {**reply.usage, "total_tokens": sum(reply.usage.values())},
    }


def _sse(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


def fake_vector(text: str, dim: int = 64) -> list[float]:
    """A deterministic vector per text (same text, same vector) for the embeddings endpoint."""
    digest = hashlib.sha256(text.encode()).digest() * (dim // 32 + 1)
    return [(b - 127.5) / 127.5 for b in digest[:dim]]
