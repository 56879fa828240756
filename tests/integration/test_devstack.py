"""`collabry dev up` (the README's run command) end to end: a grounded, streamed answer over an
uploaded document through nginx, with the embedded model when it is installed, and a clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import aiohttp
import pytest

from collabry.devstack.components import free_port, port_open
from tests.support.eventually import eventually

from .helpers import PASSWORD, new_email

pytestmark = pytest.mark.slow


class DevStack:
    def __init__(self, state: Path):
        self.port = free_port()
        env = {**os.environ, "COLLABRY_PORT": str(self.port), "COLLABRY_STATE_DIR": str(state)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "collabry.cli", "dev", "up", "--replicas", "2"],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if "ready in" in line:
                self.ready.set()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(60)
        self.reader.join(10)  # the last lines, up to the end of the pipe
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code


async def sse_events(resp: aiohttp.ClientResponse) -> list[tuple[str, dict]]:
    events, event, data = [], None, []
    async for raw in resp.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and event:
            events.append((event, json.loads("\n".join(data))))
            if event in {"done", "error"}:
                break
            event, data = None, []
    return events


@pytest.fixture
def state_dir():
    # Not pytest's tmp_path: run as root, PostgreSQL runs as the postgres user, who cannot enter it.
    with tempfile.TemporaryDirectory(prefix="collabry-devstack-") as tmp:
        Path(tmp).chmod(0o711)
        yield Path(tmp) / "var"


async def test_dev_up_gives_a_grounded_streamed_answer(state_dir):
    stack = DevStack(state_dir)
    try:
        assert await asyncio.to_thread(stack.ready.wait, 120), "".join(stack.lines)
        # two engines by default; the gateways spread users over them
        assert len(list((state_dir / "logs").glob("engine*.log"))) == 2
        base = f"http://127.0.0.1:{stack.port}"
        email = new_email("dev")
        async with aiohttp.ClientSession(base) as http:
            r = await http.post("/api/auth/register", json={"email": email, "password": PASSWORD, "name": "Dev"})
            assert r.status == 201
            r = await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
            auth = {"Authorization": f"Bearer {(await r.json())['accessToken']}"}
            r = await http.post("/api/notebooks", json={"title": "Biology"}, headers=auth)
            notebook = (await r.json())["notebook"]["id"]
            text = (
                "Mitochondria are the powerhouse of the cell. They make ATP by oxidative phosphorylation. "
                "Chloroplasts carry out photosynthesis in plant cells."
            )
            r = await http.post(
                f"/api/notebooks/{notebook}/sources", json={"title": "Cells", "text": text}, headers=auth
            )
            assert r.status == 202
            source = (await r.json())["source"]["id"]

            async def indexed() -> bool:
                sources = (await (await http.get(f"/api/notebooks/{notebook}/sources", headers=auth)).json())["sources"]
                assert sources[0]["status"] in ("ready", "processing"), sources
                return bool(sources[0]["status"] == "ready")

            await eventually(indexed, 60, "the source to be indexed", interval=0.2)
            async with http.post(
                "/api/ai/chat",
                json={"message": "What makes ATP?", "notebookId": notebook},
                headers={**auth, "Accept": "text/event-stream"},
            ) as r:  # released here: the reader stops at the end event, before the body's end
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
                events = await sse_events(r)
        names = [name for name, _ in events]
        assert names[0] == "meta" and names[-1] == "done", names
        cited = [s["sourceId"] for name, data in events if name == "sources" for s in data["sources"]]
        assert source in cited
        assert any(name == "token" and data["text"] for name, data in events)
    finally:
        code = stack.stop()
    assert code == 0, "".join(stack.lines[-20:])
    assert not port_open("127.0.0.1", stack.port)
    assert any("stopped" in line for line in stack.lines)
