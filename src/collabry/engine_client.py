"""The HTTP client for the engine's internal API (docs/interfaces.md), used by the gateway and the
worker alike (they meet the engine over HTTP; neither imports it).

The gateway holds one per app (``gateway.engine_client``: a ``cleanup_ctx`` around ``open``); the
worker opens one per run. Every call carries the service token and
the current request id (taken from structlog's context, which the gateway's middleware binds), so
one id traces a request across both processes.

Errors: the engine's ``{"error": {code, message}}`` answers become ``EngineError`` (an ``AppError``,
so a route can let it propagate and the client sees the same 4xx code); an engine that cannot be
reached after retries is ``EngineUnavailable`` (503 ``engine_unavailable``); an engine 5xx other
than 502/503 is reported as 502 ``engine_error``. Only connection failures are retried (with
exponential backoff and jitter): the request never reached the engine, so a retry cannot repeat it.

Replicas: with several engines (``COLLABRY_ENGINE_URL`` is a comma-separated list) each user's
calls go to one engine chosen by rendezvous hashing of the user id, so that user's FAISS index stays
warm in one process, and adding or losing an engine moves only the users it had. A connection
failure or a 503 from that engine moves the call to the user's next engine at once (the request
never started there, so it is not repeated on the same engine); an engine that failed, or that
the health check (``GET /health`` every few seconds, ``run_health_checks``) finds down, is tried
last until it answers again. Every engine serves every user: indexes catch up from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import structlog

from .config import Settings
from .errors import AppError
from .loops import Stop
from .metrics import ENGINE_FAILOVERS, ENGINE_UP

log = structlog.get_logger("collabry.engine_client")

TOOLS = frozenset({"summarize", "quiz", "flashcards", "mindmap"})


class EngineError(AppError):
    """The engine answered with an error; status and code are passed on to the caller."""


class EngineUnavailable(EngineError):
    def __init__(self, message: str = "the AI engine is unavailable, try again shortly") -> None:
        super().__init__(message, status=503, code="engine_unavailable", headers={"Retry-After": "5"})


class _Refused(Exception):
    """This engine did not take the call (no connection, or 503): the next one may."""


def rendezvous(urls: Sequence[str], key: str) -> list[str]:
    """``urls`` in the order ``key`` tries them: highest hash of (url, key) first."""
    return sorted(urls, key=lambda u: hashlib.sha256(f"{u}|{key}".encode()).digest(), reverse=True)


class EngineClient:
    # seconds an engine that refused a call is tried after the others (unless a check finds it up)
    DOWN_FOR = 10.0

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str | Sequence[str],
        service_token: str,
        *,
        timeout: float = 15.0,
        tool_timeout: float = 180.0,
        upload_timeout: float = 120.0,
        attempts: int = 3,
        backoff: float = 0.1,
    ) -> None:
        self.session = session
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self.base_urls = tuple(u.rstrip("/") for u in urls)
        if not self.base_urls:
            raise ValueError("no engine URL")
        self.base_url = self.base_urls[0]
        self._down_until: dict[str, float] = {}
        self._token = service_token
        self.timeout = timeout
        self.tool_timeout = tool_timeout
        self.upload_timeout = upload_timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff

    @classmethod
    def for_settings(cls, session: aiohttp.ClientSession, settings: Settings) -> EngineClient:
        # A study tool may need two full generations (one repair retry) before it answers.
        urls = settings.engine_urls if settings.engine_urls[:1] == (settings.engine_url,) else (settings.engine_url,)
        return cls(session, urls, settings.service_token, tool_timeout=2 * settings.llm_timeout + 30)

    @classmethod
    def open(cls, settings: Settings) -> EngineClient:
        """A client with its own pooled session; ``close()`` ends it. Call inside a running loop."""
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100), raise_for_status=False)
        return cls.for_settings(session, settings)

    async def close(self) -> None:
        await self.session.close()

    # -- the internal API ---------------------------------------------------------------------

    async def ingest(self, source_id: str, user_id: str, notebook_id: str, data: bytes, content_type: str) -> None:
        """Hand a stored file to the engine; it parses, chunks and indexes it in the background."""
        headers = {"Content-Type": content_type, "X-Collabry-User": user_id, "X-Collabry-Notebook": notebook_id}
        await self._call(
            "POST", f"/internal/sources/{source_id}/ingest", data=data, headers=headers, seconds=self.upload_timeout,
            user=user_id,
        )

    async def ingest_text(self, source_id: str, user_id: str, notebook_id: str, text: str) -> None:
        body = {"userId": user_id, "notebookId": notebook_id, "text": text}
        await self._call(
            "POST", f"/internal/sources/{source_id}/ingest-text", json=body, seconds=self.upload_timeout, user=user_id
        )

    async def delete_source(self, source_id: str, user_id: str) -> None:
        """Remove a source's chunks and vectors (idempotent: one the engine does not know is gone)."""
        try:
            await self._call("DELETE", f"/internal/sources/{source_id}", params={"userId": user_id}, user=user_id)
        except EngineError as exc:
            if exc.status != 404:
                raise

    async def forget_user(self, user_id: str) -> list[str]:
        """Ask every engine (not one: any may hold a copy) to drop the user's index and snapshot;
        returns the engines that could not be reached, for a later retry."""
        timeout = aiohttp.ClientTimeout(total=self.timeout, sock_connect=3)

        async def one(base: str) -> str | None:
            try:
                await self._once(base, "DELETE", f"/internal/users/{user_id}", timeout, None, {})
            except (_Refused, EngineError) as exc:
                log.warning("engine_forget_failed", engine=base, error=str(exc.__cause__ or exc))
                return base
            return None

        return [base for base in await asyncio.gather(*(one(u) for u in self.base_urls)) if base]

    async def retrieve(
        self,
        user_id: str,
        query: str,
        notebook_id: str | None = None,
        source_ids: list[str] | None = None,
        k: int | None = None,
    ) -> list[dict[str, Any]]:
        body = _compact({"userId": user_id, "query": query, "notebookId": notebook_id, "sourceIds": source_ids, "k": k})
        answer = await self._call("POST", "/internal/retrieve", json=body, user=user_id)
        return list(answer["results"])

    async def start_chat(
        self,
        user_id: str,
        message: str,
        stream_id: str,
        session_id: str | None = None,
        notebook_id: str | None = None,
        source_ids: list[str] | None = None,
    ) -> dict[str, str]:
        """Start an answer; returns ``{streamId, sessionId, messageId}`` once its stream exists in Redis.

        404 ``not_found`` for a session, notebook or source that is not the user's; 409
        ``stream_exists`` for a reused stream id.
        """
        body = _compact(
            {
                "userId": user_id,
                "message": message,
                "streamId": stream_id,
                "sessionId": session_id,
                "notebookId": notebook_id,
                "sourceIds": source_ids,
            }
        )
        return dict(await self._call("POST", "/internal/chat", json=body, user=user_id))

    async def tool(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Run a study tool (``summarize``, ``quiz``, ``flashcards``, ``mindmap``); payload carries ``userId``.

        502 ``llm_invalid_output`` when the model's output stayed invalid after a repair attempt.
        """
        if name not in TOOLS:
            raise ValueError(f"unknown tool {name!r}")
        return dict(
            await self._call(
                "POST", f"/internal/tools/{name}", json=_compact(payload), seconds=self.tool_timeout,
                user=str(payload.get("userId") or ""),
            )
        )

    async def ready(self) -> dict[str, Any]:
        """The /ready answer of the first engine that is ready (EngineError when none is)."""
        return dict(await self._call("GET", "/ready"))

    # -- replicas -----------------------------------------------------------------------------

    def order(self, user: str | None) -> list[str]:
        """The engines in the order a call for ``user`` tries them: its rendezvous order, the
        engines known to be down last."""
        urls = rendezvous(self.base_urls, user) if user and len(self.base_urls) > 1 else list(self.base_urls)
        now = time.monotonic()
        return sorted(urls, key=lambda u: self._down_until.get(u, 0.0) > now)  # stable: keeps the order

    def _mark(self, url: str, up: bool) -> None:
        if up:
            self._down_until.pop(url, None)
        else:
            self._down_until[url] = time.monotonic() + self.DOWN_FOR
        ENGINE_UP.labels(url).set(1 if up else 0)

    async def check(self) -> dict[str, bool]:
        """``GET /health`` of every engine (no I/O on their side); records who is up."""
        async def one(url: str) -> bool:
            try:
                async with self.session.get(url + "/health", timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    return resp.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False

        results = dict(zip(self.base_urls, await asyncio.gather(*(one(u) for u in self.base_urls)), strict=True))
        for url, up in results.items():
            self._mark(url, up)
        return results

    async def run_health_checks(self, stop: Stop, interval: float = 5.0) -> None:
        """Check every engine every ``interval`` seconds until ``stop`` (``loops``)."""
        while True:
            with contextlib.suppress(Exception):
                await self.check()
            if not await stop.sleep(interval):
                return

    # -- transport ----------------------------------------------------------------------------

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._token}"}
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            headers["X-Request-ID"] = str(request_id)
        headers.update(extra or {})
        return headers

    async def _call(
        self,
        method: str,
        path: str,
        *,
        seconds: float | None = None,
        headers: dict[str, str] | None = None,
        user: str | None = None,
        **kw: Any,
    ) -> Any:
        client_timeout = aiohttp.ClientTimeout(total=seconds or self.timeout, sock_connect=3)
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            order = self.order(user)
            for position, base in enumerate(order):
                try:
                    return await self._once(base, method, path, client_timeout, headers, kw)
                except _Refused as exc:
                    # Not taken by this engine (no connection, or 503): the next engine, or a later round.
                    self._mark(base, False)
                    if position + 1 < len(order):
                        ENGINE_FAILOVERS.inc()
                    log.warning("engine_retry", path=path, attempt=attempt, engine=base, error=str(exc.__cause__))
            if attempt < self.attempts:
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay *= 2
        raise EngineUnavailable()

    async def _once(
        self,
        base: str,
        method: str,
        path: str,
        client_timeout: aiohttp.ClientTimeout,
        headers: dict[str, str] | None,
        kw: dict[str, Any],
    ) -> Any:
        try:
            async with self.session.request(
                method, base + path, headers=self._headers(headers), timeout=client_timeout, **kw
            ) as resp:
                if resp.status == 503:
                    # draining or not ready: it did not start the work, another engine may
                    raise _Refused() from EngineUnavailable()
                answer = await _answer(resp)
        except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            # Refused before a byte was sent (engine restarting, stopped, not up yet), or the engine
            # went away before it answered (killed: what it had started died with it): another
            # engine takes the call.
            raise _Refused() from exc
        except TimeoutError as exc:
            raise EngineError(
                status=504, code="engine_timeout", message="the AI engine did not answer in time"
            ) from exc
        except aiohttp.ClientError as exc:
            raise EngineUnavailable() from exc
        if base in self._down_until:
            self._mark(base, True)
        return answer


async def _answer(resp: aiohttp.ClientResponse) -> Any:
    if resp.status == 204:
        return None
    try:
        body = await resp.json(content_type=None)
    except ValueError:
        body = None
    if resp.status < 400:
        return body if body is not None else {}
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code", "engine_error") if isinstance(error, dict) else "engine_error"
    message = error.get("message", resp.reason or "") if isinstance(error, dict) else (resp.reason or "")
    if resp.status == 503:
        raise EngineUnavailable()
    if resp.status == 401:  # a token mismatch is our misconfiguration, not the caller's fault
        log.error("engine_rejected_service_token")
        raise EngineError(
            status=502, code="engine_error", message="the AI engine refused this gateway's service token"
        )
    if resp.status >= 500 and resp.status != 502:
        raise EngineError(status=502, code="engine_error", message=f"the AI engine failed: {message}")
    details = error.get("details") if isinstance(error, dict) else None
    raise EngineError(status=resp.status, code=code, message=message, details=details)


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}
