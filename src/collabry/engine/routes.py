"""The engine's internal API (docs/interfaces.md), called by gateways and the worker with the service token."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field, StringConstraints

from ..appkeys import DB, REQUEST_ID, SETTINGS
from ..db.notebooks import Notebooks
from ..errors import AppError
from ..web.api import RequestModel, Routes, parse_model
from .index.state import ModelMismatch
from .ingest.parse import kind_of
from .keys import BACKGROUND, CHAT, INGESTOR, RETRIEVER, STORE, TOOLS

routes = Routes("internal")

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
READ_BLOCK = 256 * 1024


class RetrieveBody(RequestModel):
    userId: Id
    query: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    notebookId: Id | None = None
    sourceIds: list[Id] | None = Field(default=None, max_length=500)
    k: int | None = Field(default=None, ge=1, le=50)


class ChatBody(RequestModel):
    userId: Id
    message: Annotated[str, StringConstraints(min_length=1, max_length=8000)]
    streamId: Id
    sessionId: Id | None = None
    notebookId: Id | None = None
    sourceIds: list[Id] | None = Field(default=None, max_length=500)


class ToolBody(RequestModel):
    userId: Id
    notebookId: Id
    sourceIds: list[Id] | None = Field(default=None, max_length=500)
    count: int | None = Field(default=None, ge=1, le=50)


class IngestTextBody(RequestModel):
    userId: Id
    notebookId: Id
    text: str


class UserQuery(RequestModel):
    userId: Id


def _source_id(request: web.Request) -> str:
    value = request.match_info["sourceId"]
    parse_model(UserQuery, {"userId": value})  # same id rules
    return value


def _spawn(request: web.Request, coro: Any) -> None:
    tasks: set[asyncio.Task[Any]] = request.app[BACKGROUND]
    task = asyncio.create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _claim(request: web.Request, source_id: str, user_id: str) -> str:
    ingest_id = await request.app[INGESTOR].claim(source_id, user_id)
    if ingest_id is None:
        raise AppError(status=404, code="not_found", message="source not found")
    return ingest_id


async def _fail_too_large(request: web.Request, source_id: str, user_id: str, ingest_id: str, limit: int) -> AppError:
    reason = f"the file is over the {limit // 2**20} MB limit"
    await request.app[INGESTOR]._fail(source_id, user_id, ingest_id, reason)
    return AppError(status=413, code="too_large", message=reason)


@routes.post(
    "/internal/sources/{sourceId}/ingest",
    auth="service",
    summary="Ingest a file (raw body)",
    request_content="application/octet-stream",
    responses={202: None},
)
async def ingest(request: web.Request) -> web.Response:
    source_id = _source_id(request)
    headers = parse_model(
        _IngestHeaders,
        {
            "userId": request.headers.get("X-Collabry-User", ""),
            "notebookId": request.headers.get("X-Collabry-Notebook", ""),
        },
    )
    kind = kind_of(request.headers.get("Content-Type", ""))
    if kind is None:
        raise AppError(
            status=415, code="unsupported_media_type", message="send application/pdf, text/plain or text/markdown"
        )
    settings = request.app[SETTINGS]
    limit = settings.max_upload_bytes
    ingest_id = await _claim(request, source_id, headers.userId)
    path = settings.state_dir / "ingest" / f"{ingest_id}.part"
    size = 0
    try:
        with path.open("wb") as fh:
            # Streamed to disk in blocks: a large upload never sits in memory whole.
            while block := await request.content.read(READ_BLOCK):
                size += len(block)
                if size > limit:
                    raise await _fail_too_large(request, source_id, headers.userId, ingest_id, limit)
                fh.write(block)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    _start(request, source_id, headers.userId, headers.notebookId, ingest_id, path, kind)
    return web.json_response({"sourceId": source_id, "status": "processing"}, status=202)


class _IngestHeaders(RequestModel):
    userId: Id
    notebookId: Id


def _start(
    request: web.Request, source_id: str, user_id: str, notebook_id: str, ingest_id: str, path: Path, kind: str
) -> None:
    ingestor = request.app[INGESTOR]

    async def job() -> None:
        try:
            await ingestor.run(source_id, user_id, notebook_id, ingest_id, path, kind)
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    _spawn(request, job())


@routes.post(
    "/internal/sources/{sourceId}/ingest-text", auth="service", summary="Ingest pasted text", responses={202: None}
)
async def ingest_text(request: web.Request) -> web.Response:
    source_id = _source_id(request)
    settings = request.app[SETTINGS]
    limit = settings.max_upload_bytes
    raw = await request.content.read(limit + 1 + 4096)
    if len(raw) > limit + 4096:
        raise AppError(status=413, code="too_large", message=f"the text is over the {limit // 2**20} MB limit")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise AppError(status=400, code="invalid_json", message=f"the body is not valid JSON: {exc}") from None
    body = parse_model(IngestTextBody, data)
    ingest_id = await _claim(request, source_id, body.userId)
    encoded = body.text.encode()
    if len(encoded) > limit:
        raise await _fail_too_large(request, source_id, body.userId, ingest_id, limit)
    path = settings.state_dir / "ingest" / f"{ingest_id}.part"
    await asyncio.to_thread(path.write_bytes, encoded)
    _start(request, source_id, body.userId, body.notebookId, ingest_id, path, "text")
    return web.json_response({"sourceId": source_id, "status": "processing"}, status=202)


@routes.delete(
    "/internal/sources/{sourceId}",
    auth="service",
    summary="Remove a source's chunks and vectors",
    query=UserQuery,
    responses={204: None},
)
async def delete_source(request: web.Request, query: UserQuery) -> web.Response:
    await request.app[INGESTOR].delete(_source_id(request), query.userId)
    return web.Response(status=204)


@routes.delete(
    "/internal/users/{userId}",
    auth="service",
    summary="Forget a user whose account is being erased: their running answers, index and snapshot",
    responses={204: None},
)
async def forget_user(request: web.Request) -> web.Response:
    user_id = request.match_info["userId"]
    parse_model(UserQuery, {"userId": user_id})  # same id rules
    # Answers and ingestions first: each ends what it was writing before this call returns, and
    # the erasure deletes documents only after every engine has answered it.
    await request.app[CHAT].cancel_user(user_id)
    await request.app[INGESTOR].cancel_user(user_id)
    await request.app[STORE].forget(user_id)
    return web.Response(status=204)


@routes.post("/internal/retrieve", auth="service", summary="Retrieve passages for a user", body=RetrieveBody)
async def retrieve(request: web.Request, body: RetrieveBody) -> web.Response:
    settings = request.app[SETTINGS]
    if body.notebookId is not None:
        await _own_notebook(request, body.userId, body.notebookId)
    try:
        passages = await request.app[RETRIEVER].retrieve(
            body.userId,
            body.query,
            notebook_id=body.notebookId,
            source_ids=body.sourceIds,
            k=body.k or settings.retrieval_k,
        )
    except ModelMismatch as exc:
        raise AppError(status=409, code="index_model_mismatch", message=str(exc)) from None
    return web.json_response({"results": [p.public() for p in passages]})


async def _own_notebook(request: web.Request, user_id: str, notebook_id: str) -> None:
    if await Notebooks(request.app[DB]).live(notebook_id, user_id) is None:
        raise AppError(status=404, code="not_found", message="notebook not found")


@routes.post(
    "/internal/chat",
    auth="service",
    summary="Start a grounded answer into a Redis stream",
    body=ChatBody,
    responses={202: None},
)
async def chat(request: web.Request, body: ChatBody) -> web.Response:
    started = await request.app[CHAT].start(
        user_id=body.userId,
        message=body.message,
        stream_id=body.streamId,
        session_id=body.sessionId,
        notebook_id=body.notebookId,
        source_ids=body.sourceIds,
        request_id=request.get(REQUEST_ID),
    )
    return web.json_response(started, status=202)


@routes.post("/internal/tools/{tool}", auth="service", summary="Run a study tool", body=ToolBody)
async def tool(request: web.Request, body: ToolBody) -> web.Response:
    name = request.match_info["tool"]
    result = await request.app[TOOLS].run(name, body.userId, body.notebookId, body.sourceIds, body.count)
    return web.json_response(result)
