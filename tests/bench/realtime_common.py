"""What the real-time benchmarks share: secrets, gateway/engine/nginx processes, users, percentiles."""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # for tests.support (the OpenAI-protocol stand-in)

from collabry.devstack import components  # noqa: E402
from collabry.devstack.components import Process, free_port  # noqa: E402

PASSWORD = "correct horse 42"


def raise_fd_limit() -> int:
    """Thousands of connections need thousands of descriptors; children inherit the limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and of its running descendants (nginx: the master and its workers)."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += tree_cpu_seconds(int(child))
    return total


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Stack:
    """Processes of one benchmark run; everything is stopped on exit."""

    root: Path
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    def start(self, name: str, args: list[str], *, port: int | None = None, extra: dict[str, str] | None = None,
              wait: bool = True) -> Process:
        proc = components.collabry(name, args, {**self.env, **(extra or {})}, self.root / "logs", port=port)
        proc.start()
        self.processes.append(proc)
        if wait:
            proc.wait_ready(90)
        return proc

    def gateways(self, count: int, extra: dict[str, str] | None = None) -> list[int]:
        ports = [free_port() for _ in range(count)]
        procs = [self.start(f"gateway-{p}", ["gateway", "--port", str(p)], port=p, extra=extra, wait=False)
                 for p in ports]
        for proc in procs:
            proc.wait_ready(90)
        return ports

    def nginx(self, gateway_ports: list[int]) -> int:
        port = free_port()
        proc = components.nginx(self.root / "nginx", port, gateway_ports).start().wait_ready(15)
        self.processes.append(proc)
        return port

    def fake_llm(self, *, first_delay: float, delay: float, text: str) -> int:
        """The OpenAI-protocol stand-in in its own process, so it does not share our event loop."""
        port = free_port()
        code = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from tests.support import fake_openai as f

class Server(f.FakeOpenAI):
    def _next(self, body):
        return f.Reply(text={text!r}, first_delay={first_delay}, delay={delay})

s = Server().start()
print("port", s.port, flush=True)
while True:
    time.sleep(3600)
"""
        log = self.root / "logs" / "fake-llm.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        proc = Process("fake-llm", [sys.executable, "-c", code], log, lambda: "port" in _read(log), env=self.env)
        proc.start().wait_ready(30)
        self.processes.append(proc)
        port = int(_read(log).split("port", 1)[1].split()[0])
        return port

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop(timeout=15, sig=signal.SIGQUIT if proc.name == "nginx" else signal.SIGTERM)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@contextlib.contextmanager
def stack(infra: Any) -> Iterator[Stack]:
    secrets_dir = infra.root / "secrets"
    secrets_dir.mkdir()
    for name in ("jwt-secret", "service-token", "webhook-secret"):
        (secrets_dir / name).write_text(secrets.token_hex(32))
        (secrets_dir / name).chmod(0o600)
    env = {
        "COLLABRY_MODE": "production",
        "COLLABRY_LOG_LEVEL": "warning",
        "COLLABRY_STATE_DIR": str(infra.root / "state"),
        "COLLABRY_DATABASE_URI": infra.mongo_uri,
        "COLLABRY_DATABASE_NAME": "bench",
        "COLLABRY_REDIS_URL": infra.redis_url,
        "CREDENTIALS_DIRECTORY": str(secrets_dir),
        "COLLABRY_ARGON2_TIME_COST": "1",
        "COLLABRY_ARGON2_MEMORY_KIB": "1024",
        "COLLABRY_GLOBAL_LIMIT": "1000000/900",
        "COLLABRY_AI_LIMIT": "1000000/60",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    s = Stack(infra.root, env)
    try:
        yield s
    except BaseException:
        for proc in s.processes:  # the logs go with the temporary directory: show them first
            print(f"--- {proc.name} ---\n{proc.tail(15)}", file=sys.stderr)
        raise
    finally:
        s.stop()


async def user_token(base_url: str, name: str = "Bench") -> tuple[str, str]:
    """Register and log in; returns (user id, access token)."""
    email = f"{name.lower()}-{secrets.token_hex(4)}@example.com"
    async with aiohttp.ClientSession(base_url=base_url) as http:
        async with http.post("/api/auth/register", json={"email": email, "password": PASSWORD, "name": name}) as r:
            assert r.status == 201, await r.text()
            user_id = (await r.json())["user"]["id"]
        async with http.post("/api/auth/login", json={"email": email, "password": PASSWORD}) as r:
            assert r.status == 200, await r.text()
            return user_id, (await r.json())["accessToken"]


def wall() -> float:
    return time.perf_counter()


def limit_threads() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
