"""Routes that carry their own contract: request/response models, auth and summary.

Each area declares ``routes = Routes("auth")`` and decorates its handlers; the app factory adds
them, and ``openapi_document`` builds ``/api/openapi.json`` from the same declarations, so the
document cannot drift from the handlers (a test also checks every aiohttp route against it).

Handlers receive validated pydantic models: ``async def login(request, body: LoginBody)``.
Request models forbid unknown fields, so a typo is a 400 instead of being silently ignored.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, ValidationError

from ..appkeys import SETTINGS
from ..errors import AppError
from .errors import validation_details

M = TypeVar("M", bound=BaseModel)
Handler = Callable[..., Awaitable[web.StreamResponse]]
Authenticator = Callable[[web.Request], Awaitable[None]]

AUTHENTICATORS = web.AppKey("collabry.authenticators", dict[str, Authenticator])


class RequestModel(BaseModel):
    """Base for request bodies and queries: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: str | None
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    responses: dict[int, type[BaseModel] | str | None]
    request_content: str = "application/json"
    name: str = field(default="")
    # Bodies a handler reads itself (multipart, raw signed JSON): content type -> model or JSON schema.
    request_bodies: dict[str, type[BaseModel] | dict[str, Any]] | None = None
    # Extra OpenAPI parameter objects (headers a handler reads itself).
    parameters: list[dict[str, Any]] | None = None


# Deeper than any request model goes; BSON itself refuses documents nested 100 levels deep.
MAX_JSON_DEPTH = 32
# Integers are stored as BSON int64: 19 digits (and a sign) at most.
MAX_INT_DIGITS = 19


class InvalidJson(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidJson(f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _check_depth(value: Any) -> None:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidJson(f"the body is nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def loads_json(raw: bytes) -> Any:
    """Parse a request body; every malformed body (syntax, encoding, nesting, huge numbers) is
    ``InvalidJson``, never a RecursionError or an overflow further down."""
    try:
        value = json.loads(raw, parse_int=_parse_int, parse_constant=_no_constant)
    except InvalidJson:
        raise
    except RecursionError:
        raise InvalidJson("the body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise InvalidJson(str(exc)) from None
    _check_depth(value)
    return value


def _no_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not JSON")


def is_json_type(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def read_json(request: web.Request) -> Any:
    limit = request.app[SETTINGS].max_json_bytes
    if request.content_length is not None and request.content_length > limit:
        raise AppError(status=413, code="too_large", message=f"the request body is over {limit} bytes")
    raw = await request.read()
    if len(raw) > limit:
        raise AppError(status=413, code="too_large", message=f"the request body is over {limit} bytes")
    if not raw.strip():
        return {}
    # A body of another type is refused before it is read as JSON: a browser can send text/plain
    # (or a form) cross-site without a preflight, application/json it cannot.
    if not is_json_type(request.content_type):
        raise AppError(status=415, code="unsupported_media_type", message="send the body as application/json")
    try:
        return loads_json(raw)
    except InvalidJson as exc:
        raise AppError(status=400, code="invalid_json", message=f"the body is not valid JSON: {exc}") from None


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("the time is out of range once converted to UTC") from None


# A time with a zone, converted to UTC while validating (a time at the edge of the calendar whose
# offset moves it out of range is a 400, not an overflow when it is stored).
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]


def parse_model(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise AppError(status=400, code="invalid_request", message="the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AppError(
            status=400, code="invalid_request", message="the request is not valid", details=validation_details(exc)
        ) from None


class Routes:
    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        auth: str | None = "user",
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        responses: dict[int, type[BaseModel] | str | None] | None = None,
        request_content: str = "application/json",
        request_bodies: dict[str, type[BaseModel] | dict[str, Any]] | None = None,
        parameters: list[dict[str, Any]] | None = None,
    ) -> Callable[[Handler], Handler]:
        def decorate(fn: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method=method,
                    path=path,
                    handler=fn,
                    summary=summary,
                    tag=self.tag,
                    auth=auth,
                    body=body,
                    query=query,
                    responses=responses or {200: None},
                    request_content=request_content,
                    name=fn.__name__,
                    request_bodies=request_bodies,
                    parameters=parameters,
                )
            )
            return fn

        return decorate

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)

    def add_to(self, app: web.Application) -> None:
        for endpoint in self.endpoints:
            app.router.add_route(endpoint.method, endpoint.path, _wrap(endpoint), name=f"{self.tag}.{endpoint.name}")
        app.setdefault(ENDPOINTS, []).extend(self.endpoints)


ENDPOINTS = web.AppKey("collabry.endpoints", list[Endpoint])


def _wrap(endpoint: Endpoint) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if endpoint.auth is not None:
            await request.app[AUTHENTICATORS][endpoint.auth](request)
        kwargs: dict[str, Any] = {}
        if endpoint.query is not None:
            kwargs["query"] = parse_model(endpoint.query, dict(request.query))
        if endpoint.body is not None:
            kwargs["body"] = parse_model(endpoint.body, await read_json(request))
        return await endpoint.handler(request, **kwargs)

    handler.__name__ = endpoint.name
    return handler


# ---------------------------------------------------------------------------------------------
# OpenAPI

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
    for name, sub in schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components.setdefault(model.__name__, schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def openapi_document(endpoints: list[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for ep in endpoints:
        op: dict[str, Any] = {"summary": ep.summary, "tags": [ep.tag], "operationId": f"{ep.tag}.{ep.name}"}
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(ep.path)
        ]
        if ep.query is not None:
            qschema = ep.query.model_json_schema()
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
        params.extend(ep.parameters or [])
        if params:
            op["parameters"] = params
        if ep.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(ep.body, components, "validation")}},
            }
        elif ep.request_bodies:
            op["requestBody"] = {
                "required": True,
                "content": {
                    ctype: {"schema": schema if isinstance(schema, dict) else _schema(schema, components, "validation")}
                    for ctype, schema in ep.request_bodies.items()
                },
            }
        elif ep.request_content != "application/json":
            op["requestBody"] = {"required": True, "content": {ep.request_content: {"schema": {}}}}
        responses: dict[str, Any] = {}
        for status, resp in ep.responses.items():
            if status == 204:
                responses["204"] = {"description": "No content"}
            elif resp is None:
                responses[str(status)] = {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            elif isinstance(resp, str):
                responses[str(status)] = {"description": "OK", "content": {resp: {"schema": {}}}}
            else:
                responses[str(status)] = {
                    "description": "OK",
                    "content": {"application/json": {"schema": _schema(resp, components, "serialization")}},
                }
        responses["default"] = {
            "description": "Error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        op["responses"] = responses
        if ep.auth == "user":
            op["security"] = [{"bearer": []}]
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _path_params(path: str) -> list[str]:
    out = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            out.append(part[1:-1].split(":")[0])
    return out
