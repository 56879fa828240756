"""Grounded chat answers, generated in the background into a Redis stream (cache.streams).

``start`` validates the request (reads only) and creates the stream (event 1, ``meta``), starts
the answer as a task, and returns once a new session is stored (a client may open it at once), so
the gateway can relay the stream. The new session and the question are written alongside
retrieval and generation rather than before them: the first token never waits for a database
write. The assistant's message is saved only after the question's write has finished, and the end
event only after that, so a client that sees the end finds both stored (an erasure waits for the
task too); the answer's history leaves out the question whether or not it is stored yet. The task emits
``sources`` (the passages it may cite), ``token`` pieces, and one end event: ``done``
(finishReason ``stop``, ``length``, ``cancelled`` or ``retrieval_only``) or ``error``. A cancel
request is noticed within ``CANCEL_POLL`` seconds and stops generation. The final message, with
its sources, is saved to the session whatever the ending.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from redis.asyncio import Redis

from ..cache.streams import StreamEnded, StreamExists, StreamWriter
from ..config import Settings
from ..db.ai_sessions import ChatSessions
from ..db.client import Database, new_id, utcnow
from ..db.notebooks import Notebooks
from ..errors import AppError, EngineRestarting, ModelFailed
from .index.state import ModelMismatch
from .llm.client import LLM, Generation, LLMError
from .llm.prompt import chat_messages, retrieval_only_answer
from .metrics import ANSWERS, FIRST_TOKEN_SECONDS
from .retrieval import Passage, Retriever

log = structlog.get_logger("collabry.chat")

CANCEL_POLL = 0.2
HISTORY_MESSAGES = 6
RETRIEVAL_ONLY_PIECE = 120  # characters per token event in retrieval-only answers


@dataclass
class ChatRequest:
    user_id: str
    message: str
    stream_id: str
    session_id: str
    message_id: str
    notebook_id: str | None
    source_ids: list[str] | None
    request_id: str | None
    new_session_title: str | None = None  # the session is created by the answer task
    asked_at: datetime | None = None


class ChatService:
    def __init__(self, db: Database, redis: Redis, settings: Settings, retriever: Retriever, llm: LLM) -> None:
        self.db = db
        self.chats = ChatSessions(db)
        self.redis = redis
        self.settings = settings
        self.retriever = retriever
        self.llm = llm
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: dict[asyncio.Task[None], StreamWriter] = {}  # each running answer's stream
        self.owners: dict[asyncio.Task[None], str] = {}  # each running answer's user

    async def start(
        self,
        *,
        user_id: str,
        message: str,
        stream_id: str,
        session_id: str | None,
        notebook_id: str | None,
        source_ids: list[str] | None,
        request_id: str | None,
    ) -> dict[str, str]:
        if notebook_id is not None and await Notebooks(self.db).live(notebook_id, user_id) is None:
            raise AppError(status=404, code="not_found", message="notebook not found")
        now = utcnow()
        if session_id is not None:
            session = await self.chats.get(session_id, user_id)
            if session is None:
                raise AppError(status=404, code="not_found", message="session not found")
            if notebook_id is None:
                notebook_id = session.get("notebook_id")
        title = None
        if session_id is None:
            session_id = new_id()
            title = " ".join(message.split())[:80] or "New chat"
        message_id = new_id()
        writer = StreamWriter.for_settings(self.redis, stream_id, self.settings)
        try:
            await writer.start(user_id=user_id, session_id=session_id, message_id=message_id)
        except StreamExists:
            raise AppError(status=409, code="stream_exists", message="this stream id is already in use") from None
        request = ChatRequest(
            user_id, message, stream_id, session_id, message_id, notebook_id, source_ids, request_id, title, now
        )
        # The database writes run alongside the answer, which starts now: a new session is created
        # before the 202 (a client may open it at once), the question whenever it is done.
        created = asyncio.create_task(self._create_session(request)) if title is not None else None
        stored = asyncio.create_task(self._store_question(request, created))
        task = asyncio.create_task(self._answer(writer, request, stored), name=f"answer:{stream_id}")
        self.tasks.add(task)
        self.writers[task] = writer
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda done: self.writers.pop(done, None))
        self.owners[task] = user_id
        task.add_done_callback(lambda done: self.owners.pop(done, None))
        if created is not None:
            try:
                await asyncio.shield(created)
            except Exception:
                task.cancel()  # no session to answer in: the stream ends with an error event
                raise
        return {"streamId": stream_id, "sessionId": session_id, "messageId": message_id}

    async def _answer(self, writer: StreamWriter, req: ChatRequest, stored: asyncio.Task[None]) -> None:
        structlog.contextvars.bind_contextvars(request_id=req.request_id, stream_id=req.stream_id)
        started = time.perf_counter()
        state: dict[str, Any] = {"passages": [], "text": [], "cancelled": False, "first": None}
        outcome = "error"
        ending: tuple[str, dict[str, Any]] | None = None
        async with writer.heartbeating():
            work = asyncio.create_task(self._generate(writer, req, state))
            watcher = asyncio.create_task(self._watch_cancel(writer, work, state))
            try:
                finish, usage = await work
                outcome = finish
                ending = ("done", {"finishReason": finish, "usage": usage})
            except asyncio.CancelledError:
                if not state["cancelled"]:  # the engine is shutting down
                    outcome = "interrupted"
                    ending = ("error", ENGINE_RESTARTING)
                    raise
                outcome = "cancelled"
                ending = ("done", {"finishReason": "cancelled", "usage": {}})
            except LLMError as exc:
                ending = ("error", ModelFailed(str(exc)).body())
            except ModelMismatch as exc:
                ending = ("error", AppError(str(exc), status=409, code="index_model_mismatch").body())
            except StreamEnded:
                outcome = "stream_closed"  # closed as stale by a reader; nothing more to write
            except Exception as exc:
                log.exception("answer_failed")
                ending = ("error", AppError(type(exc).__name__, status=500, code="internal").body())
            finally:
                watcher.cancel()
                if not work.done():  # the engine is stopping: stop generating too
                    work.cancel()
                ANSWERS.labels(outcome).inc()
                if state["first"] is not None:
                    FIRST_TOKEN_SECONDS.observe(state["first"] - started)
                # The question first, then the answer, then the end event: a client that sees the
                # end finds both stored.
                await _quietly(stored)
                await _quietly(self._save(req, state, outcome))
                if ending is not None:
                    await _quietly(writer.finish(*ending))

    async def _watch_cancel(self, writer: StreamWriter, work: asyncio.Task[Any], state: dict[str, Any]) -> None:
        while not work.done():
            await asyncio.sleep(CANCEL_POLL)
            with contextlib.suppress(Exception):  # a Redis blip delays a cancel, it does not break the answer
                if await writer.cancel_requested():
                    state["cancelled"] = True
                    work.cancel()
                    return

    async def _generate(
        self, writer: StreamWriter, req: ChatRequest, state: dict[str, Any]
    ) -> tuple[str, dict[str, int]]:
        passages = await self.retriever.retrieve(
            req.user_id,
            req.message,
            notebook_id=req.notebook_id,
            source_ids=req.source_ids,
            k=self.settings.retrieval_k,
        )
        if not self.llm.enabled:
            state["passages"] = passages
            await writer.append("sources", {"sources": [p.public() for p in passages]})
            answer = retrieval_only_answer(passages)
            for i in range(0, len(answer), RETRIEVAL_ONLY_PIECE):
                piece = answer[i : i + RETRIEVAL_ONLY_PIECE]
                await writer.append("token", {"text": piece})
                state["text"].append(piece)
            return "retrieval_only", {}
        history = await self._history(req)
        messages, used = chat_messages(req.message, passages, history, budget_tokens=self.settings.tool_input_tokens)
        state["passages"] = used
        await writer.append("sources", {"sources": [p.public() for p in used]})
        generation = Generation()
        async for piece in self.llm.stream(messages, generation):
            if state["first"] is None:
                state["first"] = time.perf_counter()
            state["text"].append(piece)
            await writer.append("token", {"text": piece})
        return generation.finish_reason or "stop", generation.usage

    async def _create_session(self, req: ChatRequest) -> None:
        assert req.new_session_title is not None
        await self.chats.create(req.session_id, req.user_id, req.notebook_id, req.new_session_title,
                                req.asked_at or utcnow())

    async def _store_question(self, req: ChatRequest, created: asyncio.Task[None] | None) -> None:
        at = req.asked_at or utcnow()
        if created is not None:
            await created
        await self.chats.add_message(
            new_id(), req.session_id, req.user_id, "user", req.message, sources=[], stream_id=req.stream_id, at=at
        )

    async def _history(self, req: ChatRequest) -> list[dict[str, Any]]:
        if req.new_session_title is not None:
            return []  # a new session has no history
        recent = await self.chats.latest_messages(req.session_id, req.user_id, HISTORY_MESSAGES + 1)
        # The question being answered may be stored already (it is written alongside); it is added
        # to the prompt separately.
        earlier = [m for m in recent if not (m.get("stream_id") == req.stream_id and m["role"] == "user")]
        return [{"role": m["role"], "content": m["content"]} for m in earlier[-HISTORY_MESSAGES:]]

    async def _save(self, req: ChatRequest, state: dict[str, Any], outcome: str) -> None:
        content = "".join(state["text"])
        passages: list[Passage] = state["passages"]
        now = utcnow()
        await self.chats.add_message(
            req.message_id, req.session_id, req.user_id, "assistant", content,
            sources=[p.citation() for p in passages], stream_id=req.stream_id, at=now, finish_reason=outcome,
        )
        await self.chats.touch(req.session_id, now)

    async def cancel_user(self, user_id: str, timeout: float = 10.0) -> int:
        """Stop the user's running answers and wait (up to ``timeout``) until each has written its
        last words: the account is being erased, and nothing may be written after that."""
        tasks = [task for task, owner in self.owners.items() if owner == user_id]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        return len(tasks)

    async def shutdown(self, timeout: float) -> None:
        """Let answers finish within ``timeout``; the rest end with an ``error`` event."""
        if not self.tasks:
            return
        _, pending = await asyncio.wait(set(self.tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if not pending:
            return
        _, stuck = await asyncio.wait(pending, timeout=CANCELLED_ANSWERS_GRACE)
        # An answer that has not ended by now (a model client that does not give way to the cancel
        # promptly) still gets its end event while Redis is open: otherwise its reader would wait
        # for the heartbeat to go stale and see `stream_interrupted` instead of being told to ask
        # again. A late `finish` by the task itself then finds the stream ended and writes nothing.
        for task in stuck:
            writer = self.writers.get(task)
            if writer is not None:
                await _quietly(writer.finish("error", ENGINE_RESTARTING))


CANCELLED_ANSWERS_GRACE = 5.0
ENGINE_RESTARTING = EngineRestarting().body()


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception as exc:
        log.warning("answer_cleanup_failed", error=str(exc))
