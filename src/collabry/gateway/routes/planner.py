"""/api/planner/tasks: study tasks with due dates (the worker sends reminders for them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from ...domain import planner
from ...errors import AppError
from ...web.api import RequestModel, UtcDatetime
from ._domain import DomainRoutes, actor_of, db_of, json, no_content

routes = DomainRoutes("planner")

TITLE = Field(min_length=1, max_length=200, pattern=r"\S")


class TaskBody(RequestModel):
    title: str = TITLE
    dueAt: UtcDatetime


class TaskPatch(RequestModel):
    # Optional, but not nullable: the schema offers no null, and a null sent anyway is a 400.
    title: Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")] | SkipJsonSchema[None] = None
    dueAt: UtcDatetime | SkipJsonSchema[None] = None
    done: bool | SkipJsonSchema[None] = None


class TaskQuery(RequestModel):
    status: Literal["all", "open", "done"] = "all"


class Task(BaseModel):
    id: str
    title: str
    dueAt: str
    done: bool
    createdAt: str
    updatedAt: str


class TaskEnvelope(BaseModel):
    task: Task


class TaskList(BaseModel):
    tasks: list[Task]


@routes.post("/api/planner/tasks", summary="Create a task", body=TaskBody, responses={201: TaskEnvelope})
async def create_task(request: web.Request, body: TaskBody) -> web.Response:
    who = await actor_of(request)
    doc = await planner.create(db_of(request), who.user_id, body.title.strip(), body.dueAt)
    return json({"task": planner.public(doc)}, status=201)


@routes.get("/api/planner/tasks", summary="Tasks by due date", query=TaskQuery, responses={200: TaskList})
async def list_tasks(request: web.Request, query: TaskQuery) -> web.Response:
    who = await actor_of(request)
    docs = await planner.list_for(db_of(request), who.user_id, status=query.status)
    return json({"tasks": [planner.public(doc) for doc in docs]})


@routes.get("/api/planner/tasks/{id}", summary="One task", responses={200: TaskEnvelope})
async def get_task(request: web.Request) -> web.Response:
    who = await actor_of(request)
    doc = await planner.get(db_of(request), who.user_id, request.match_info["id"])
    return json({"task": planner.public(doc)})


@routes.patch("/api/planner/tasks/{id}", summary="Change a task's title, due date or done flag", body=TaskPatch,
              responses={200: TaskEnvelope})
async def update_task(request: web.Request, body: TaskPatch) -> web.Response:
    who = await actor_of(request)
    changes: dict[str, Any] = {}
    sent = body.model_fields_set
    for field, column in (("title", "title"), ("dueAt", "due_at"), ("done", "done")):
        if field in sent:
            value = getattr(body, field)
            if value is None:
                raise AppError(status=400, code="invalid_request", message=f"{field} cannot be null")
            changes[column] = value.strip() if field == "title" else value
    doc = await planner.update(db_of(request), who.user_id, request.match_info["id"], changes)
    return json({"task": planner.public(doc)})


@routes.delete("/api/planner/tasks/{id}", summary="Delete a task", responses={204: None})
async def delete_task(request: web.Request) -> web.Response:
    who = await actor_of(request)
    await planner.delete(db_of(request), who.user_id, request.match_info["id"])
    return no_content()
