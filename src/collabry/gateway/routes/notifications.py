"""/api/notifications: list (optionally unread only) with the unread count; mark read."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from ...domain import notifications
from ...web.api import RequestModel
from ._domain import DomainRoutes, actor_of, db_of, json, no_content

routes = DomainRoutes("notifications")


class NotificationQuery(RequestModel):
    unread: bool = False
    limit: int = Field(default=notifications.LIST_LIMIT, ge=1, le=200)


class Notification(BaseModel):
    id: str
    type: str
    title: str
    body: str
    read: bool
    createdAt: str


class NotificationList(BaseModel):
    notifications: list[Notification]
    unread: int


@routes.get("/api/notifications", summary="Newest notifications first, with the unread count",
            query=NotificationQuery, responses={200: NotificationList})
async def list_notifications(request: web.Request, query: NotificationQuery) -> web.Response:
    who = await actor_of(request)
    docs, unread = await notifications.list_for(db_of(request), who.user_id, unread_only=query.unread,
                                                limit=query.limit)
    return json({"notifications": [notifications.public(doc) for doc in docs], "unread": unread})


@routes.post("/api/notifications/read-all", summary="Mark every notification read", responses={204: None})
async def read_all(request: web.Request) -> web.Response:
    who = await actor_of(request)
    await notifications.mark_all_read(db_of(request), who.user_id)
    return no_content()


@routes.post("/api/notifications/{id}/read", summary="Mark one notification read", responses={204: None})
async def read_one(request: web.Request) -> web.Response:
    who = await actor_of(request)
    await notifications.mark_read(db_of(request), who.user_id, request.match_info["id"])
    return no_content()
