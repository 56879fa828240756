"""/api/usage: today's metered usage (UTC day) against the plan's limits."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from ...appkeys import SETTINGS
from ...domain import usage
from ..keys import QUOTA
from ._domain import DomainRoutes, actor_of, db_of, json
from .billing import PlanLimitsView

routes = DomainRoutes("usage")


class Used(BaseModel):
    ai: int
    uploads: int
    storageBytes: int
    boards: int
    notebooks: int


class UsageView(BaseModel):
    date: str
    plan: str
    used: Used
    limits: PlanLimitsView


@routes.get("/api/usage", summary="Today's usage and the plan's limits", responses={200: UsageView})
async def get_usage(request: web.Request) -> web.Response:
    who = await actor_of(request)
    report = await usage.report(db_of(request), request.app[SETTINGS], who.user_id, request.app[QUOTA])
    limits = report.limits
    return json({
        "date": report.date,
        "plan": report.plan,
        "used": {"ai": report.ai, "uploads": report.uploads, "storageBytes": report.storage_bytes,
                 "boards": report.boards, "notebooks": report.notebooks},
        "limits": {"aiPerDay": limits.ai_per_day, "uploadsPerDay": limits.uploads_per_day,
                   "storageBytes": limits.storage_bytes, "boards": limits.boards, "notebooks": limits.notebooks},
    })
