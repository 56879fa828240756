"""Browser tests: headless Chromium (Debian's package) driven by Playwright against the real stack.

One stack per module: Redis and the database (the session's ``infra``), an engine with the
OpenAI-protocol stand-in, two gateway replicas and nginx serving the built front end
(frontend/dist, built by scripts/build-frontend.sh when it is out of date). Every test makes its
own users, so tests share the stack without sharing data.

Chromium never downloads anything: Playwright launches /usr/bin/chromium (``COLLABRY_CHROMIUM``
overrides) with background networking off. Without Chromium or Node the tests are skipped, except
in CI (``CI=true``) or with ``COLLABRY_BROWSER_TESTS=require``, where that is a failure.

Screenshots and timings go to build/test-output/browser/ (``COLLABRY_TEST_OUTPUT`` overrides);
with ``COLLABRY_UPDATE_SCREENSHOTS=1`` the screenshots also replace docs/screenshots/.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from collabry.devstack import components
from collabry.devstack.components import Process, free_port
from tests.support.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("COLLABRY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(os.environ.get("COLLABRY_TEST_OUTPUT") or REPO / "build" / "test-output") / "browser"
SCREENSHOTS_DOC = REPO / "docs" / "screenshots"
AXE = REPO / "frontend" / "node_modules" / "axe-core" / "axe.min.js"

pytestmark = pytest.mark.slow


def _required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("COLLABRY_BROWSER_TESTS") == "require"


def _unavailable(reason: str) -> None:
    if _required():
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def web_build() -> Path:
    """The front end, built (or found up to date) once per session."""
    script = REPO / "scripts" / "build-frontend.sh"
    result = subprocess.run([str(script)], capture_output=True, text=True, check=False, timeout=600)
    dist = REPO / "frontend" / "dist"
    if result.returncode != 0 or not (dist / "index.html").exists():
        _unavailable(f"the web front end could not be built:\n{result.stderr[-2000:]}")
    return dist


# Package scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is open, and the asyncio tests that follow tests/browser need the thread to themselves.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (requirements/test.txt)")
    expect.set_options(timeout=15_000)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@dataclass
class Stack:
    url: str
    fake_llm: FakeOpenAI
    env: dict[str, str]
    log_dir: Path
    processes: list[Process] = field(default_factory=list)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail(20)}" for p in self.processes)

    @property
    def gateways(self) -> dict[int, Process]:
        return {int(p.name.split("-", 1)[1]): p for p in self.processes if p.name.startswith("gateway-")}

    def restart_gateway(self, port: int) -> None:
        """Start a replica again on its port (after a test killed it)."""
        old = self.gateways[port]
        old.stop(timeout=10)
        argv = ["gateway", "--port", str(port)]
        proc = components.collabry(f"gateway-{port}", argv, self.env, self.log_dir, port=port)
        self.processes[self.processes.index(old)] = proc.start().wait_ready(90)


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    """More environment for the module's stack: a test module overrides this fixture (SMTP, limits)."""
    return {}


@pytest.fixture(scope="module")
def stack(
    infra: Any, web_build: Path, tmp_path_factory: pytest.TempPathFactory, stack_env: dict[str, str]
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("browser-stack")
    creds = root / "secrets"
    creds.mkdir()
    for name in ("jwt-secret", "service-token", "webhook-secret"):
        (creds / name).write_text(secrets.token_hex(32))
        (creds / name).chmod(0o600)
    fake = FakeOpenAI().start()
    engine_port = free_port()
    env = {
        "COLLABRY_MODE": "production",
        "COLLABRY_LOG_FORMAT": "json",
        "COLLABRY_STATE_DIR": str(root / "state"),
        "COLLABRY_DATABASE_URI": infra.mongo_uri,
        "COLLABRY_DATABASE_NAME": "b_" + secrets.token_hex(6),
        "COLLABRY_REDIS_URL": infra.redis_url,
        "CREDENTIALS_DIRECTORY": str(creds),
        "COLLABRY_ARGON2_TIME_COST": "1",
        "COLLABRY_ARGON2_MEMORY_KIB": "1024",
        "COLLABRY_DRAIN_TIMEOUT": "5",
        "COLLABRY_READY_TIMEOUT": "1",
        "COLLABRY_LLM_BASE_URL": fake.base_url,
        "COLLABRY_LLM_TIMEOUT": "10",
        "COLLABRY_ENGINE_URL": f"http://127.0.0.1:{engine_port}",
        # every browser of the tests comes from 127.0.0.1; the per-IP limit is not under test here
        "COLLABRY_GLOBAL_LIMIT": "100000/900",
        **stack_env,
    }
    logs = root / "logs"
    procs: list[Process] = []
    try:
        engine = components.collabry("engine", ["engine", "--port", str(engine_port)], env, logs, port=engine_port)
        procs.append(engine.start())
        ports = [free_port(), free_port()]
        for port in ports:
            procs.append(
                components.collabry(f"gateway-{port}", ["gateway", "--port", str(port)], env, logs, port=port).start()
            )
        for proc in procs:
            proc.wait_ready(90)
        public = free_port()
        procs.append(components.nginx(root / "nginx", public, ports).start().wait_ready(15))
        yield Stack(f"http://127.0.0.1:{public}", fake, env, logs, procs)
    finally:
        for proc in reversed(procs):
            proc.stop(timeout=10, sig=signal.SIGQUIT if proc.name == "nginx" else signal.SIGTERM)
        fake.stop()


@dataclass
class Screens:
    """Saves screenshots and timings of a test under the test output."""

    directory: Path
    timings: dict[str, float] = field(default_factory=dict)

    def shot(self, page: Any, name: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        if os.environ.get("COLLABRY_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOTS_DOC.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, SCREENSHOTS_DOC / path.name)
        return path

    def record(self, name: str, value: float) -> None:
        self.timings[name] = value
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / "timings.json"
        data = json.loads(target.read_text()) if target.exists() else {}
        data[name] = value
        target.write_text(json.dumps(data, indent=2, sort_keys=True))


@pytest.fixture
def screens() -> Screens:
    return Screens(OUTPUT)


@pytest.fixture
def new_page(browser: Any, stack: Stack) -> Iterator[Any]:
    """Opens pages in fresh browser contexts (separate cookie jars: separate people).

    Every page fails its test on a Content-Security-Policy violation or an uncaught error.
    """
    contexts: list[Any] = []
    problems: list[str] = []

    def open_page(*, mobile: bool = False) -> Any:
        viewport = {"width": 390, "height": 844} if mobile else {"width": 1280, "height": 860}
        context = browser.new_context(base_url=stack.url, viewport=viewport, device_scale_factor=1)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: problems.append(f"console: {msg.text}")
            if "Content Security Policy" in msg.text or "Refused to" in msg.text
            else None,
        )
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert problems == [], problems


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical accessibility violations (axe-core, loaded outside the page's CSP)."""
    if not AXE.exists():
        _unavailable(f"{AXE} not found (npm ci in frontend/)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]
