"""/api/planner (to be filled in)."""

from __future__ import annotations

from ...web.api import Routes

routes = Routes("planner")
