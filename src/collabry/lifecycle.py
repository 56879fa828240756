"""Process lifecycle shared by the gateway and the engine: serve, drain on SIGTERM, sd_notify.

Shutdown order: SIGTERM -> ``/ready`` answers 503 at once (the listener stays open so probes and
in-flight clients still get answers) and systemd is told STOPPING=1 -> in-flight requests get up
to ``drain_timeout`` seconds -> the runner closes connections and every ``cleanup_ctx`` resource.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Awaitable, Callable

import structlog
import uvloop
from aiohttp import web

log = structlog.get_logger("collabry.lifecycle")


def sd_notify(state: str) -> bool:
    """Send ``state`` to ``$NOTIFY_SOCKET`` (systemd Type=notify); a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("sd_notify_failed", error=str(exc))
        return False
    return True


class Drain:
    """Shutdown state and the count of requests in flight, shared by middleware and probes."""

    def __init__(self) -> None:
        self.draining = asyncio.Event()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def enter(self) -> None:
        self._in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


DRAIN = web.AppKey("collabry.drain", Drain)
SHUTDOWN_GRACE = 3.0  # seconds, after the drain, for handlers still finishing when connections close


def install_drain(app: web.Application) -> Drain:
    drain = Drain()
    app[DRAIN] = drain
    return drain


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    drain_timeout: float,
    on_ready: Callable[[], Awaitable[None]] | None = None,
) -> None:
    drain = app[DRAIN]
    # The drain below already gave in-flight requests the budget; the runner's own wait for
    # handlers after closing connections is only a short grace on top of it, not a second budget.
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    if on_ready is not None:
        await on_ready()
    log.info("listening", host=host, port=port)
    sd_notify("READY=1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    drain.draining.set()
    sd_notify("STOPPING=1")
    log.info("draining", in_flight=drain.in_flight, budget_seconds=drain_timeout)
    finished = await drain.wait_idle(drain_timeout)
    if not finished:
        log.warning("drain_budget_exceeded", in_flight=drain.in_flight)
    await runner.cleanup()
    log.info("stopped")


def run(app_factory: Callable[[], Awaitable[web.Application]], host: str, port: int, drain_timeout: float) -> int:
    async def main() -> None:
        app = await app_factory()
        await serve(app, host, port, drain_timeout=drain_timeout)

    # uvloop: a faster event loop (libuv) for the servers' hot paths; same asyncio API.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    return 0
