"""/api/boards: collaborative whiteboards, their members and the recycle bin.

Static paths (``/api/boards/trash``) are declared before ``/api/boards/{id}`` so no id can shadow
them. Every handler goes through ``domain.policy`` (via the ``domain.boards`` service).
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from ...appkeys import SETTINGS
from ...domain import boards
from ...realtime.board_docs import board_state
from ...web.api import RequestModel
from ..keys import HUB
from ..resources import emitter_of
from ._domain import DomainRoutes, actor_of, db_of, json, no_content
from .auth import EMAIL_PATTERN

routes = DomainRoutes("boards")

TITLE_PATTERN = r"\S"  # at least one visible character


class BoardBody(RequestModel):
    title: str = Field(min_length=1, max_length=200, pattern=TITLE_PATTERN)


class MemberBody(RequestModel):
    email: str = Field(max_length=254, pattern=EMAIL_PATTERN)
    role: Literal["editor", "viewer"]


class Board(BaseModel):
    id: str
    title: str
    ownerId: str
    role: Literal["owner", "editor", "viewer"]
    archived: bool
    createdAt: str
    updatedAt: str


class Member(BaseModel):
    userId: str
    name: str
    role: Literal["owner", "editor", "viewer"]


class BoardDetail(Board):
    members: list[Member]


class DeletedBoard(Board):
    deletedAt: str
    purgeAt: str


class BoardEnvelope(BaseModel):
    board: Board


class BoardDetailEnvelope(BaseModel):
    board: BoardDetail


class BoardList(BaseModel):
    boards: list[Board]


class DeletedBoardList(BaseModel):
    boards: list[DeletedBoard]


class MemberEnvelope(BaseModel):
    member: Member



def _title(body: BoardBody) -> str:
    return body.title.strip()


@routes.post("/api/boards", summary="Create a board", body=BoardBody, responses={201: BoardEnvelope})
async def create_board(request: web.Request, body: BoardBody) -> web.Response:
    who = await actor_of(request)
    doc = await boards.create(db_of(request), request.app[SETTINGS], who, _title(body))
    return json({"board": boards.public(doc, "owner")}, status=201)


@routes.get("/api/boards", summary="Boards the user owns or is a member of", responses={200: BoardList})
async def list_boards(request: web.Request) -> web.Response:
    who = await actor_of(request)
    rows = await boards.list_for(db_of(request), who.user_id)
    return json({"boards": [boards.public(doc, role) for doc, role in rows]})


routes.alias("POST", "/api/boards/", create_board, summary="Create a board (trailing slash)", body=BoardBody,
             responses={201: BoardEnvelope})
routes.alias("GET", "/api/boards/", list_boards, summary="List boards (trailing slash)", responses={200: BoardList})


@routes.get("/api/boards/trash", summary="The owner's recycle bin (deleted boards kept for 30 days)",
            responses={200: DeletedBoardList})
async def board_trash(request: web.Request) -> web.Response:
    who = await actor_of(request)
    settings = request.app[SETTINGS]
    docs = await boards.trash(db_of(request), settings, who.user_id)
    return json({"boards": [boards.public_deleted(doc, settings) for doc in docs]})


@routes.get("/api/boards/{id}", summary="A board with its members", responses={200: BoardDetailEnvelope})
async def get_board(request: web.Request) -> web.Response:
    who = await actor_of(request)
    db = db_of(request)
    doc, role = await boards.get(db, who.user_id, request.match_info["id"])
    return json({"board": {**boards.public(doc, role), "members": await boards.members(db, doc)}})


@routes.patch("/api/boards/{id}", summary="Rename a board (editor or owner)", body=BoardBody,
              responses={200: BoardEnvelope})
async def rename_board(request: web.Request, body: BoardBody) -> web.Response:
    who = await actor_of(request)
    doc, role = await boards.rename(db_of(request), who.user_id, request.match_info["id"], _title(body))
    return json({"board": boards.public(doc, role)})


@routes.delete("/api/boards/{id}", summary="Move a board to the recycle bin (owner only)", responses={204: None})
async def delete_board(request: web.Request) -> web.Response:
    who = await actor_of(request)
    board_id = request.match_info["id"]
    await boards.delete(db_of(request), who.user_id, board_id)
    await _evict(request, board_id, None)  # members lose access at once, live sockets included
    return no_content()


@routes.post("/api/boards/{id}/restore", summary="Take a board back out of the recycle bin (owner only)",
             responses={200: BoardEnvelope})
async def restore_board(request: web.Request) -> web.Response:
    who = await actor_of(request)
    doc = await boards.restore(db_of(request), request.app[SETTINGS], who, request.match_info["id"])
    return json({"board": boards.public(doc, "owner")})


@routes.post("/api/boards/{id}/members", summary="Add a member by email, or change a member's role (owner only)",
             body=MemberBody, responses={201: MemberEnvelope, 200: MemberEnvelope})
async def add_member(request: web.Request, body: MemberBody) -> web.Response:
    who = await actor_of(request)
    member, created = await boards.add_member(
        db_of(request), emitter_of(request), who, request.match_info["id"], body.email, body.role
    )
    if not created:  # a changed role applies to the member's open sockets now, not at the next re-check
        await _evict(request, request.match_info["id"], [str(member.get("userId", ""))], recheck=True)
    return json({"member": member}, status=201 if created else 200)


@routes.delete("/api/boards/{id}/members/{userId}", summary="Remove a member (owner), or leave a board (yourself)",
               responses={204: None})
async def remove_member(request: web.Request) -> web.Response:
    who = await actor_of(request)
    board_id, user_id = request.match_info["id"], request.match_info["userId"]
    await boards.remove_member(db_of(request), who.user_id, board_id, user_id)
    await _evict(request, board_id, [user_id])
    return no_content()


async def _evict(request: web.Request, board_id: str, user_ids: list[str] | None, *, recheck: bool = False) -> None:
    """Sockets of these users (everyone's when None) leave the board's live room on every replica."""
    hub = request.app.get(HUB)
    if hub is not None:
        await hub.evict_from_board(board_id, user_ids, recheck=recheck)


@routes.get("/api/boards/{id}/snapshot", summary="The board's Yjs document as one state update",
            responses={200: "application/octet-stream"})
async def board_snapshot(request: web.Request) -> web.Response:
    who = await actor_of(request)
    db = db_of(request)
    board, _ = await boards.get(db, who.user_id, request.match_info["id"])
    state = await board_state(db, board["_id"])
    return web.Response(body=state, content_type="application/octet-stream",
                        headers={"Cache-Control": "no-store"})
