"""The little of the engine's internal API the worker needs: dropping a purged source's chunks and
vectors. The worker does not import the gateway (processes meet over HTTP, Redis and the database),
so this is its own client; it satisfies ``domain.sources.SourceEngine``'s ``delete_source``."""

from __future__ import annotations

import aiohttp

from ..config import Settings


class EngineCallFailed(RuntimeError):
    pass


class WorkerEngine:
    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        self.base_url = settings.engine_url.rstrip("/")
        self._token = settings.service_token
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=5)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def delete_source(self, source_id: str, user_id: str) -> None:
        """Idempotent: a source the engine no longer knows is already gone."""
        url = f"{self.base_url}/internal/sources/{source_id}"
        headers = {"Authorization": f"Bearer {self._token}"}
        async with self._client().delete(url, params={"userId": user_id}, headers=headers) as resp:
            if resp.status not in (200, 202, 204, 404):
                raise EngineCallFailed(f"engine answered {resp.status} to DELETE source {source_id}")

    async def ingest(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError("the worker never ingests")

    async def ingest_text(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError("the worker never ingests")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
