"""/api/notebooks: notebooks, their recycle bin, and sources (upload, status, deletion).

A source arrives as ``multipart/form-data`` (field ``file``, optional field ``title``) or as JSON
``{title, text}``. The multipart body is read in chunks and refused with 413 as soon as it passes
the limit, before anything is stored; the type is then decided from the bytes (``domain.filetypes``).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, Field

from ...appkeys import SETTINGS
from ...domain import notebooks, policy, sources
from ...errors import AppError
from ...web.api import RequestModel, parse_model, read_json
from ..resources import engine_of
from ._domain import DomainRoutes, actor_of, db_of, json, no_content

routes = DomainRoutes("notebooks")

TITLE_PATTERN = r"\S"
CHUNK = 64 * 1024
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers on top of the file itself
MAX_TITLE_FIELD = 1024


class NotebookBody(RequestModel):
    title: str = Field(min_length=1, max_length=200, pattern=TITLE_PATTERN)


class TextSourceBody(RequestModel):
    title: str = Field(min_length=1, max_length=200, pattern=TITLE_PATTERN)
    text: str = Field(min_length=1, pattern=TITLE_PATTERN)


class Notebook(BaseModel):
    id: str
    title: str
    createdAt: str
    updatedAt: str


class DeletedNotebook(Notebook):
    deletedAt: str
    purgeAt: str


class NotebookEnvelope(BaseModel):
    notebook: Notebook


class NotebookList(BaseModel):
    notebooks: list[Notebook]


class DeletedNotebookList(BaseModel):
    notebooks: list[DeletedNotebook]


class Source(BaseModel):
    id: str
    title: str
    kind: str
    status: str
    chunks: int
    size: int
    createdAt: str
    error: str | None = Field(default=None, description="present when status is failed")


class SourceEnvelope(BaseModel):
    source: Source


class SourceList(BaseModel):
    sources: list[Source]


UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "PDF, plain text or Markdown (by content)"},
        "title": {"type": "string", "maxLength": 200, "description": "defaults to the file name"},
    },
    "additionalProperties": False,
}



@routes.post("/api/notebooks", summary="Create a notebook", body=NotebookBody, responses={201: NotebookEnvelope})
async def create_notebook(request: web.Request, body: NotebookBody) -> web.Response:
    who = await actor_of(request)
    doc = await notebooks.create(db_of(request), request.app[SETTINGS], who, body.title.strip())
    return json({"notebook": notebooks.public(doc)}, status=201)


@routes.get("/api/notebooks", summary="The user's notebooks", responses={200: NotebookList})
async def list_notebooks(request: web.Request) -> web.Response:
    who = await actor_of(request)
    docs = await notebooks.list_for(db_of(request), who.user_id)
    return json({"notebooks": [notebooks.public(doc) for doc in docs]})


routes.alias("POST", "/api/notebooks/", create_notebook, summary="Create a notebook (trailing slash)",
             body=NotebookBody, responses={201: NotebookEnvelope})
routes.alias("GET", "/api/notebooks/", list_notebooks, summary="List notebooks (trailing slash)",
             responses={200: NotebookList})


@routes.get("/api/notebooks/trash", summary="Deleted notebooks, kept for 30 days", responses={200: DeletedNotebookList})
async def notebook_trash(request: web.Request) -> web.Response:
    who = await actor_of(request)
    settings = request.app[SETTINGS]
    docs = await notebooks.trash(db_of(request), settings, who.user_id)
    return json({"notebooks": [notebooks.public_deleted(doc, settings) for doc in docs]})


@routes.get("/api/notebooks/{id}", summary="A notebook", responses={200: NotebookEnvelope})
async def get_notebook(request: web.Request) -> web.Response:
    who = await actor_of(request)
    doc = await notebooks.get(db_of(request), who.user_id, request.match_info["id"])
    return json({"notebook": notebooks.public(doc)})


@routes.patch("/api/notebooks/{id}", summary="Rename a notebook", body=NotebookBody, responses={200: NotebookEnvelope})
async def rename_notebook(request: web.Request, body: NotebookBody) -> web.Response:
    who = await actor_of(request)
    doc = await notebooks.rename(db_of(request), who.user_id, request.match_info["id"], body.title.strip())
    return json({"notebook": notebooks.public(doc)})


@routes.delete("/api/notebooks/{id}", summary="Move a notebook and its sources to the recycle bin",
               responses={204: None})
async def delete_notebook(request: web.Request) -> web.Response:
    who = await actor_of(request)
    await notebooks.delete(db_of(request), engine_of(request), who.user_id, request.match_info["id"])
    return no_content()


@routes.post("/api/notebooks/{id}/restore", summary="Take a notebook back out of the recycle bin",
             responses={200: NotebookEnvelope})
async def restore_notebook(request: web.Request) -> web.Response:
    who = await actor_of(request)
    doc = await notebooks.restore(db_of(request), request.app[SETTINGS], engine_of(request), who,
                                  request.match_info["id"])
    return json({"notebook": notebooks.public(doc)})


# -- sources ----------------------------------------------------------------------------------


def _too_large(limit: int) -> AppError:
    return AppError(status=413, code="too_large", message=f"the file is over the {limit} byte limit")


async def _read_limited(part: aiohttp.BodyPartReader, limit: int, on_overflow: AppError) -> bytes:
    buf = bytearray()
    while True:
        chunk = await part.read_chunk(CHUNK)
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            raise on_overflow


async def _read_multipart(request: web.Request, limit: int) -> tuple[bytes, str | None, str | None]:
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD:
        raise _too_large(limit)
    data: bytes | None = None
    filename: str | None = None
    title: str | None = None
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, aiohttp.BodyPartReader):
                raise AppError(status=400, code="invalid_request", message="nested multipart bodies are not accepted")
            if part.name == "file" and data is None:
                filename = part.filename
                data = await _read_limited(part, limit, _too_large(limit))
            elif part.name == "title" and title is None:
                raw = await _read_limited(part, MAX_TITLE_FIELD, AppError(
                    status=400, code="invalid_request", message="title is too long"
                ))
                title = raw.decode("utf-8", "replace").strip()[:200] or None
            else:
                raise AppError(
                    status=400, code="invalid_request",
                    message=f"unexpected multipart field {part.name!r}; send file and title",
                )
    except (ValueError, AssertionError, aiohttp.ClientPayloadError, HttpProcessingError, UnicodeDecodeError) as exc:
        raise AppError(
            status=400, code="invalid_multipart", message=f"the multipart body cannot be read: {exc}"
        ) from None
    if data is None:
        raise AppError(status=400, code="invalid_request", message="a multipart field named file is required")
    return data, filename, title


@routes.post(
    "/api/notebooks/{id}/sources",
    summary="Add a source: a file (multipart field file) or JSON {title, text}; indexed in the background",
    request_bodies={"multipart/form-data": UPLOAD_SCHEMA, "application/json": TextSourceBody},
    responses={202: SourceEnvelope},
)
async def add_source(request: web.Request) -> web.Response:
    who = await actor_of(request)
    db = db_of(request)
    settings = request.app[SETTINGS]
    notebook_id = request.match_info["id"]
    await policy.notebook(db, notebook_id, who.user_id)  # before reading a body nobody may send here
    if request.content_type == "multipart/form-data":
        data, filename, title = await _read_multipart(request, settings.max_upload_bytes)
        doc = await sources.add(db, settings, engine_of(request), who, notebook_id, data, filename=filename,
                                title=title)
    elif request.content_type == "application/json":
        body = parse_model(TextSourceBody, await read_json(request))
        doc = await sources.add(db, settings, engine_of(request), who, notebook_id, body.text.encode("utf-8"),
                                title=body.title.strip(), is_text=True)
    else:
        raise AppError(
            status=415, code="unsupported_media_type",
            message="send multipart/form-data with a file field, or application/json {title, text}",
        )
    return json({"source": sources.public(doc)}, status=202)


@routes.get("/api/notebooks/{id}/sources", summary="A notebook's sources and their indexing status",
            responses={200: SourceList})
async def list_sources(request: web.Request) -> web.Response:
    who = await actor_of(request)
    docs = await sources.list_for(db_of(request), who.user_id, request.match_info["id"])
    return json({"sources": [sources.public(doc) for doc in docs]})


@routes.get("/api/notebooks/{id}/sources/{sourceId}", summary="One source (poll its status)",
            responses={200: SourceEnvelope})
async def get_source(request: web.Request) -> web.Response:
    who = await actor_of(request)
    doc = await sources.get(db_of(request), who.user_id, request.match_info["id"], request.match_info["sourceId"])
    return json({"source": sources.public(doc)})


@routes.delete("/api/notebooks/{id}/sources/{sourceId}", summary="Delete a source with its file, chunks and vectors",
               responses={204: None})
async def delete_source(request: web.Request) -> web.Response:
    who = await actor_of(request)
    await sources.remove(db_of(request), request.app[SETTINGS], engine_of(request), who.user_id,
                         request.match_info["id"], request.match_info["sourceId"])
    return no_content()
