"""Reading an answer's Redis stream the way clients get it: through the gateway's SSE relay.

Production delivers a stream only through ``gateway.relay.Relays`` (one ``StreamWaker`` per process
wakes the relays, which read with ``StreamReader.read``, look at the writer's heartbeat when quiet
and close a stale stream). ``AnswerStreams`` serves exactly that machinery, set up by the same
cleanup context as the gateway's, on a local test server, and parses the events it sends back into
``StreamEvent``s. Tests of the engine and of the stream format therefore read what a gateway would
relay, not what a test-only reader would.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from collabry.appkeys import DRAIN, SETTINGS
from collabry.cache.streams import StreamEvent
from collabry.config import Settings
from collabry.gateway.keys import RELAYS
from collabry.gateway.relay import relays_ctx
from collabry.lifecycle import install_drain

DEFAULTS = Settings()


class AnswerStreams:
    """A client of the production SSE relay for any stream id."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http

    async def events(
        self,
        stream_id: str,
        after: int = 0,
        *,
        until: Callable[[StreamEvent], bool] | None = None,
        arrived: Callable[[StreamEvent], object] | None = None,
    ) -> list[StreamEvent]:
        """The events after ``after`` until the relay ends the stream (its end event, or the stream
        vanished), or up to the first event for which ``until`` holds, after which the client goes.
        ``arrived`` is called with each event as it comes."""
        got: list[StreamEvent] = []
        async with self.http.get(f"/streams/{stream_id}", params={"after": str(after)}) as resp:
            assert resp.status == 200, await resp.text()
            fields: dict[str, str] = {}
            while raw := await resp.content.readline():
                line = raw.decode().rstrip("\n")
                if line.startswith(":") or line.startswith("retry:"):
                    continue  # pings, and the reconnect hint of a draining relay
                if line:
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value
                    continue
                if "event" in fields:
                    got.append(StreamEvent(int(fields["id"]), fields["event"], fields["data"]))
                    fields = {}
                    if arrived is not None:
                        arrived(got[-1])
                    if until is not None and until(got[-1]):
                        break
        return got


async def _relay(request: web.Request) -> web.StreamResponse:
    after = int(request.query.get("after", "0"))
    return await request.app[RELAYS].relay(request, request.match_info["stream_id"], after=after)


async def _drain(app: web.Application) -> None:
    app[DRAIN].draining.set()  # as the gateway's shutdown does: open relays end at once


@contextlib.asynccontextmanager
async def answer_streams(
    redis_url: str,
    *,
    redis_prefix: str = DEFAULTS.redis_prefix,
    stale_after: float = DEFAULTS.stream_stale_after,
    quiet: float = 0.25,
) -> AsyncIterator[AnswerStreams]:
    """The SSE relay of a gateway over ``redis_url``; ``stale_after`` is ``COLLABRY_STREAM_STALE_AFTER``
    and ``quiet`` its ``COLLABRY_SSE_HEARTBEAT`` (a relay looks at the writer after 0.8 of it)."""
    settings = Settings(
        redis_url=redis_url, redis_prefix=redis_prefix, stream_stale_after=stale_after, sse_heartbeat=quiet
    )
    app = web.Application()
    app[SETTINGS] = settings
    install_drain(app)
    app.cleanup_ctx.append(relays_ctx)
    app.on_shutdown.append(_drain)
    app.router.add_get("/streams/{stream_id}", _relay)
    server = TestServer(app)
    await server.start_server()
    try:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(base_url=server.make_url("/"), timeout=timeout) as http:
            yield AnswerStreams(http)
    finally:
        await server.close()
