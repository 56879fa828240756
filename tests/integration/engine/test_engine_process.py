"""`collabry engine` as a process: probes, metrics, configuration errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from collabry.devstack.components import free_port
from tests.support.engine_fixtures import EngineHandle

pytestmark = pytest.mark.slow


async def test_probes_and_metrics(engine: EngineHandle) -> None:
    async with aiohttp.ClientSession(base_url=engine.url) as http:
        assert (await http.get("/health")).status == 200
        resp = await http.get("/ready")
        body = await resp.json()
        assert resp.status == 200, body
        assert body["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok", "embedder": "ok", "llm": "ok"}
        metrics = await (await http.get("/metrics")).text()
        assert "collabry_engine_ingestions_total" in metrics
        # The internal API is closed without the token.
        assert (await http.post("/internal/retrieve", json={})).status == 401


async def test_ready_reports_an_unreachable_llm(start_engine: Callable[..., EngineHandle]) -> None:
    handle = start_engine({"COLLABRY_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"})
    async with aiohttp.ClientSession(base_url=handle.url) as http:
        resp = await http.get("/ready")
        body = await resp.json()
    assert resp.status == 503
    assert body["checks"]["llm"].startswith("failed") and body["checks"]["database"] == "ok"


def test_a_missing_embedding_model_is_a_configuration_error(engine_env: dict[str, str], tmp_path: Path) -> None:
    env = {**os.environ, **engine_env, "COLLABRY_EMBED_MODEL_FILE": str(tmp_path / "missing.onnx")}
    result = subprocess.run(
        [sys.executable, "-m", "collabry.cli", "engine", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 78, result.stderr[-2000:]
    assert "missing.onnx" in result.stderr
