"""/api/ai/chat and /api/ai/streams: AI answers delivered as resumable Server-Sent Events.

- ``POST /api/ai/chat`` checks auth, the per-user AI rate and the plan's daily quota (429
  ``quota_exceeded`` before anything starts; metered in Redis, no database write on the way),
  asks the engine to start, then relays from event 1.
- ``GET /api/ai/streams/{id}`` with ``Last-Event-ID: n`` relays from event n+1, on any replica,
  while the stream is retained. Only the owner sees it (404 otherwise).
- ``POST /api/ai/streams/{id}/cancel`` stops generation; a client that goes away stops only its
  relay.
- While the replica drains, new requests answer 503 (nginx or the client retries elsewhere).

The relay itself (batches, heartbeats, the waker, the drain) is ``gateway.relay``.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

import structlog
from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from ...appkeys import DRAIN
from ...cache.client import REDIS_ERRORS
from ...db.client import new_id
from ...engine_client import EngineError
from ...errors import AppError, NotFound
from ...web.api import RequestModel, Routes
from ..keys import RELAYS
from ..metering import meter_ai, refund_ai
from ..resources import engine_of
from ..security import current_user_id

log = structlog.get_logger("collabry.sse")
routes = Routes("ai")

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


def _refuse_while_draining(request: web.Request) -> None:
    if request.app[DRAIN].draining.is_set():
        # nginx retries a GET on the next replica; a client retries a POST after the hint.
        raise AppError(
            status=503, code="unavailable", message="this replica is shutting down", headers={"Retry-After": "1"}
        )


class ChatBody(RequestModel):
    message: str = Field(min_length=1, max_length=8000)
    notebookId: Id | None = None
    sessionId: Id | None = None
    sourceIds: list[Id] | None = Field(default=None, max_length=200)


class CancelResult(BaseModel):
    streamId: str
    cancelling: bool


@routes.post(
    "/api/ai/chat",
    summary="Ask a question; the answer streams back as Server-Sent Events",
    body=ChatBody,
    responses={200: "text/event-stream"},
)
async def chat(request: web.Request, body: ChatBody) -> web.StreamResponse:
    user_id = current_user_id(request)
    _refuse_while_draining(request)
    await meter_ai(request, user_id)
    stream_id = new_id()
    relays = request.app[RELAYS]
    async with contextlib.AsyncExitStack() as stack:
        try:
            following = await stack.enter_async_context(relays.following_new(stream_id))
        except REDIS_ERRORS as exc:  # the answer could not be delivered: do not start it
            log.warning("stream_subscribe_failed", error=str(exc))
            await refund_ai(request, user_id)
            raise AppError(
                status=503, code="unavailable", message="answers cannot be delivered right now",
                headers={"Retry-After": "2"},
            ) from None  # fmt: skip
        try:
            await engine_of(request).start_chat(
                user_id, body.message, stream_id, body.sessionId, body.notebookId, body.sourceIds
            )
        except EngineError:
            await refund_ai(request, user_id)  # nothing was generated
            raise
        return await relays.relay(request, stream_id, after=0, following=following)


async def _owned_stream(request: web.Request) -> str:
    stream_id = request.match_info["streamId"]
    if not _valid_id(stream_id):
        raise NotFound("stream")
    try:
        meta = await request.app[RELAYS].reader.meta(stream_id)
    except REDIS_ERRORS as exc:
        log.warning("stream_meta_unavailable", error=str(exc))
        raise AppError(
            status=503, code="unavailable", message="answers cannot be read right now", headers={"Retry-After": "2"}
        ) from None
    if meta is None or meta.user_id != current_user_id(request):
        raise NotFound("stream")
    return stream_id


def _valid_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-") for c in value)


def _last_event_id(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or len(raw) > 12:
        raise AppError(
            status=400, code="invalid_request", message="Last-Event-ID must be the id of an event of this stream"
        )
    return int(raw)


@routes.get(
    "/api/ai/streams/{streamId}",
    summary="Resume an answer's event stream after the event named by Last-Event-ID",
    responses={200: "text/event-stream"},
)
async def stream(request: web.Request) -> web.StreamResponse:
    _refuse_while_draining(request)
    after = _last_event_id(request)
    stream_id = await _owned_stream(request)
    return await request.app[RELAYS].relay(request, stream_id, after=after)


@routes.post(
    "/api/ai/streams/{streamId}/cancel",
    summary="Stop generating an answer; its stream ends with done/cancelled",
    responses={202: CancelResult},
)
async def cancel(request: web.Request) -> web.Response:
    stream_id = await _owned_stream(request)
    running = await request.app[RELAYS].reader.request_cancel(stream_id)
    return web.json_response({"streamId": stream_id, "cancelling": running}, status=202)
