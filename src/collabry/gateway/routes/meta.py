"""/api/openapi.json: the document is built from the same route declarations the app serves."""

from __future__ import annotations

from aiohttp import web

from ... import __version__
from ...web.api import ENDPOINTS, Routes, openapi_document
from ..keys import OPENAPI

routes = Routes("meta")


@routes.get("/api/openapi.json", summary="This document", auth=None)
async def openapi(request: web.Request) -> web.Response:
    doc = request.app.get(OPENAPI)
    if doc is None:
        doc = openapi_document(request.app[ENDPOINTS], title="Collabry API", version=__version__)
    return web.json_response(doc)
