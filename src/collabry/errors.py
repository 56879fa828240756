"""The one error vocabulary of every process: an ``AppError`` carries the status, code, message,
details and headers the client receives. Domain rules, the engine, the engine client and the
stream relay raise it (or one of the named kinds below); the web layer's error middleware alone
renders it as ``{"error": {"code", "message", "details"?}}``. Nothing here depends on a framework.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The error as clients read it: an HTTP answer's ``error`` and an SSE ``error`` event."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            out["details"] = self.details
        return out


class Invalid(AppError):
    status, code = 400, "invalid_request"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    """Also what another user's resource looks like: its existence is never revealed."""

    status, code = 404, "not_found"

    def __init__(self, what: str = "resource") -> None:
        super().__init__(f"{what} not found")


class Conflict(AppError):
    status, code = 409, "conflict"


class PlanLimit(AppError):
    status, code = 403, "plan_limit"


class StorageLimit(AppError):
    status, code = 403, "storage_limit"


class QuotaExceeded(AppError):
    status, code = 429, "quota_exceeded"


class TooLarge(AppError):
    status, code = 413, "too_large"


class UnsupportedType(AppError):
    status, code = 415, "unsupported_media_type"


class Unavailable(AppError):
    status, code = 503, "unavailable"


# -- how an answer's stream can end (the ``error`` event of ``/api/ai/.../stream``) -------------


class StreamInterrupted(AppError):
    """The engine writing the answer stopped without a word (killed, its host gone)."""

    status, code = 503, "stream_interrupted"

    def __init__(self, message: str = "the answer was interrupted; please ask again") -> None:
        super().__init__(message)


class EngineRestarting(AppError):
    """The engine stopped the answer on its way down (a restart, a deploy)."""

    status, code = 503, "engine_restarting"

    def __init__(self, message: str = "the answer was interrupted; please ask again") -> None:
        super().__init__(message)


class ModelFailed(AppError):
    status, code = 502, "llm_failed"
