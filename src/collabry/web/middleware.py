"""Request id, one access-log line per request, metrics and in-flight counting for drain."""

from __future__ import annotations

import functools
import re
import secrets
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from ..appkeys import CLIENT_IP, DRAIN, PROCESS, REQUEST_ID, USER_ID
from ..metrics import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS

log = structlog.get_logger("collabry.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Probes and scrapes are not work to wait for during drain, and would keep it from ever ending.
UNTRACKED = frozenset({"/health", "/ready", "/metrics"})


def request_id_of(request: web.Request) -> str:
    incoming = request.headers.get("X-Request-ID", "")
    return incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(8)


# The metrics' children by their labels, found once (``labels()`` takes a lock and builds a key
# on every call, a few per cent of a cheap request's time).
_in_flight = functools.lru_cache(maxsize=16)(HTTP_IN_FLIGHT.labels)
_requests = functools.lru_cache(maxsize=4096)(HTTP_REQUESTS.labels)
_latency = functools.lru_cache(maxsize=4096)(HTTP_LATENCY.labels)


def route_of(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    process = request.app[PROCESS]
    request_id = request_id_of(request)
    request[REQUEST_ID] = request_id
    structlog.contextvars.bind_contextvars(request_id=request_id)
    tracked = request.path not in UNTRACKED
    drain = request.app[DRAIN]
    if tracked:
        drain.enter()
    _in_flight(process).inc()
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers["X-Request-ID"] = request_id
            if drain.draining.is_set():
                # Tell nginx not to reuse this connection: the next request goes to another replica.
                response.force_close()
        return response
    finally:
        _in_flight(process).dec()
        if tracked:
            drain.leave()
        duration = time.perf_counter() - started
        route = route_of(request)
        _requests(process, request.method, route, str(status)).inc()
        _latency(process, request.method, route).observe(duration)
        if tracked:
            log.info(
                "request",
                method=request.method,
                route=route,
                path=request.path,
                status=status,
                duration_ms=round(duration * 1000, 2),
                user_id=request.get(USER_ID),
                client_ip=request.get(CLIENT_IP),
            )
        structlog.contextvars.unbind_contextvars("request_id")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: on every answer, streamed ones included. JSON is never sniffed
    into something a browser would run; an error or a token is never kept by a cache."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.status >= 400:
        response.headers.setdefault("Cache-Control", "no-store")
