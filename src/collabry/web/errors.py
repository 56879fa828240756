"""The error middleware: every error leaves as ``{"error": {"code", "message", "details"?}}`` with
a 4xx/5xx status. ``AppError`` (``collabry.errors``, raised anywhere below the web layer) carries
its own status and code; request validation, aiohttp's HTTP exceptions and database outages are
mapped here; anything else is a logged 500 without internals."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure, PyMongoError

from ..errors import AppError

log = structlog.get_logger("collabry.http")


def error_response(
    status: int, code: str, message: str, *, details: Any = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return web.json_response({"error": body}, status=status, headers=headers)


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AppError as exc:
        return web.json_response({"error": exc.body()}, status=exc.status, headers=exc.headers)
    except ValidationError as exc:
        return error_response(400, "invalid_request", "the request is not valid", details=validation_details(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        headers = {
            k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"} or k.startswith("RateLimit")
        }
        return error_response(exc.status, code, exc.reason or code, headers=headers)
    except PyMongoError as exc:
        if not database_unavailable(exc):
            log.exception("unhandled_error", path=request.path)
            return error_response(500, "internal", "internal error")
        # The database is down, slow, or resolved a deadlock by aborting this request: nothing was
        # written, and the same request can simply be sent again.
        log.warning("database_unavailable", path=request.path, error=type(exc).__name__)
        return error_response(503, "unavailable", "the database is unavailable, try again shortly",
                              headers={"Retry-After": "1"})
    except Exception:
        log.exception("unhandled_error", path=request.path)
        return error_response(500, "internal", "internal error")


def database_unavailable(exc: PyMongoError) -> bool:
    """Failures that say nothing about the request: worth a retry, not a bug report."""
    if isinstance(exc, ConnectionFailure | ExecutionTimeout):
        return True
    if not isinstance(exc, OperationFailure):
        return False
    # FerretDB reports PostgreSQL being unreachable, or a deadlock it aborted, as an InternalError
    # with PostgreSQL's own words.
    message = str(exc).lower()
    return "deadlock" in message or "failed to connect" in message
