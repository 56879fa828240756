"""JSON answers rendered with orjson (several times faster than the standard library's encoder)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


def dumps(data: Any) -> bytes:
    return orjson.dumps(data)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def json_bytes_response(
    body: bytes, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An answer whose body is JSON already encoded (a cached document, ``dumps``)."""
    return web.Response(body=body, status=status, headers=headers, content_type="application/json", charset="utf-8")


def json_response(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return json_bytes_response(orjson.dumps(data), status=status, headers=headers)
