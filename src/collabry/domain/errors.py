"""Domain exceptions. Each carries the HTTP status and error code the gateway answers with, so the
mapping lives next to the rule that raises it; nothing here depends on the web framework."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(
        self, message: str, *, code: str | None = None, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers or {}


class Invalid(DomainError):
    status, code = 400, "invalid_request"


class Unauthorized(DomainError):
    status, code = 401, "unauthorized"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    """Also what another user's resource looks like: its existence is never revealed."""

    status, code = 404, "not_found"

    def __init__(self, what: str = "resource") -> None:
        super().__init__(f"{what} not found")


class Conflict(DomainError):
    status, code = 409, "conflict"


class PlanLimit(DomainError):
    status, code = 403, "plan_limit"


class StorageLimit(DomainError):
    status, code = 403, "storage_limit"


class QuotaExceeded(DomainError):
    status, code = 429, "quota_exceeded"


class TooLarge(DomainError):
    status, code = 413, "too_large"


class UnsupportedType(DomainError):
    status, code = 415, "unsupported_media_type"


class Unavailable(DomainError):
    status, code = 503, "unavailable"
