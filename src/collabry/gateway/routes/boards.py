"""/api/boards (to be filled in)."""

from __future__ import annotations

from ...web.api import Routes

routes = Routes("boards")
