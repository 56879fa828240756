"""/api/ai: study tools (summary, quiz, flashcards, mind map) and the chat session history.

The tools run in the engine (``engine_client``): the gateway authenticates, applies the per-user AI
rate limit and the plan's daily AI quota, and passes the engine's answer or error through (a unit
of quota is given back when the engine could not do the work). Chat itself and its streams are
served by ``ai_stream``; the sessions and messages it produces are read here from the database.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from ...appkeys import DB
from ...db.ai_sessions import ChatSessions, Citation
from ...db.client import iso
from ...engine_client import EngineError
from ...errors import AppError
from ...web.api import RequestModel, Routes
from ..metering import meter_ai, refund_ai
from ..resources import engine_of
from ..security import current_user_id

routes = Routes("ai")

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class ToolBody(RequestModel):
    notebookId: Id
    sourceIds: list[Id] | None = Field(default=None, max_length=200)


class QuizBody(ToolBody):
    count: int = Field(default=5, ge=1, le=20)


class FlashcardsBody(ToolBody):
    count: int = Field(default=10, ge=1, le=50)


class SummaryOut(BaseModel):
    summary: str
    keyPoints: list[str]


class QuestionOut(BaseModel):
    question: str
    options: list[str]
    answerIndex: int
    explanation: str


class QuizOut(BaseModel):
    questions: list[QuestionOut]


class CardOut(BaseModel):
    front: str
    back: str


class FlashcardsOut(BaseModel):
    cards: list[CardOut]


class NodeOut(BaseModel):
    title: str
    children: list[NodeOut] = []


class MindMapOut(BaseModel):
    root: NodeOut


class SessionOut(BaseModel):
    id: str
    title: str
    notebookId: str | None
    updatedAt: str


class SessionList(BaseModel):
    sessions: list[SessionOut]


class SourceRef(BaseModel):
    sourceId: str
    title: str
    chunkId: str
    score: float
    text: str


class MessageOut(BaseModel):
    id: str
    role: str
    content: str
    sources: list[SourceRef] | None = None
    createdAt: str


class MessageList(BaseModel):
    messages: list[MessageOut]



async def _run_tool(request: web.Request, name: str, body: ToolBody, count: int | None = None) -> web.Response:
    user_id = current_user_id(request)
    await meter_ai(request, user_id)
    payload: dict[str, Any] = {"userId": user_id, "notebookId": body.notebookId, "sourceIds": body.sourceIds}
    if count is not None:
        payload["count"] = count
    try:
        result = await engine_of(request).tool(name, payload)
    except EngineError:
        await refund_ai(request, user_id)  # the work did not happen
        raise
    return web.json_response(result)


@routes.post(
    "/api/ai/summarize",
    summary="Summarise a notebook's sources",
    body=ToolBody,
    responses={200: SummaryOut},
)
async def summarize(request: web.Request, body: ToolBody) -> web.Response:
    return await _run_tool(request, "summarize", body)


@routes.post(
    "/api/ai/quiz",
    summary="Multiple-choice quiz from a notebook's sources",
    body=QuizBody,
    responses={200: QuizOut},
)
async def quiz(request: web.Request, body: QuizBody) -> web.Response:
    return await _run_tool(request, "quiz", body, body.count)


@routes.post(
    "/api/ai/flashcards",
    summary="Flashcards from a notebook's sources",
    body=FlashcardsBody,
    responses={200: FlashcardsOut},
)
async def flashcards(request: web.Request, body: FlashcardsBody) -> web.Response:
    return await _run_tool(request, "flashcards", body, body.count)


@routes.post(
    "/api/ai/mindmap",
    summary="Mind map of a notebook's sources",
    body=ToolBody,
    responses={200: MindMapOut},
)
async def mindmap(request: web.Request, body: ToolBody) -> web.Response:
    return await _run_tool(request, "mindmap", body)


@routes.get("/api/ai/sessions", summary="The user's chat sessions, most recent first", responses={200: SessionList})
async def list_sessions(request: web.Request) -> web.Response:
    user_id = current_user_id(request)
    sessions = [
        {
            "id": doc["_id"],
            "title": doc.get("title", ""),
            "notebookId": doc.get("notebook_id"),
            "updatedAt": iso(doc.get("updated_at")),
        }
        for doc in await ChatSessions(request.app[DB]).recent(user_id)
    ]
    return web.json_response({"sessions": sessions})


def _public_citation(stored: Citation) -> dict[str, Any]:
    """A stored citation as API.md names a source reference (the same as in the answer stream)."""
    out: dict[str, Any] = {"sourceId": stored["source_id"], "title": stored["title"], "chunkId": stored["chunk_id"],
                           "score": stored["score"], "text": stored["text"]}
    if "page" in stored:
        out["page"] = stored["page"]
    return out


async def _own_session(request: web.Request) -> dict[str, Any]:
    doc = await ChatSessions(request.app[DB]).get(request.match_info["sessionId"], current_user_id(request))
    if doc is None:
        raise AppError(status=404, code="not_found", message="session not found")
    return dict(doc)


@routes.get(
    "/api/ai/sessions/{sessionId}/messages", summary="A session's messages in order", responses={200: MessageList}
)
async def session_messages(request: web.Request) -> web.Response:
    session = await _own_session(request)
    messages = []
    for doc in await ChatSessions(request.app[DB]).messages_of(session["_id"], session["user_id"]):
        message: dict[str, Any] = {
            "id": doc["_id"],
            "role": doc["role"],
            "content": doc.get("content", ""),
            "createdAt": iso(doc.get("created_at")),
        }
        if doc["role"] == "assistant":
            message["sources"] = [_public_citation(c) for c in doc.get("sources") or []]
        messages.append(message)
    return web.json_response({"messages": messages})


@routes.delete("/api/ai/sessions/{sessionId}", summary="Delete a chat session and its messages", responses={204: None})
async def delete_session(request: web.Request) -> web.Response:
    session = await _own_session(request)
    await ChatSessions(request.app[DB]).delete(session["_id"], session["user_id"])
    return web.Response(status=204)
