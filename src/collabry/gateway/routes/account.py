"""The user's own account.

- ``PATCH /api/auth/me``: edit the profile (name) and change the password. A password change needs
  the current password; it revokes every other session of the account (their refresh tokens,
  access tokens and sockets), while the session that made the change stays signed in.
- ``GET /api/account/export``: a zip of everything the user owns (``domain/accounts.py``), limited
  to ``COLLABRY_ACCOUNT_EXPORT_LIMIT`` per user (5 an hour).
- ``DELETE /api/account {password}``: erase the account. Every session ends at once; the erasure
  runs for up to ``COLLABRY_ACCOUNT_ERASURE_BUDGET`` seconds (200 ``deleted``), and what is left
  then (a large account, an unreachable engine) the worker finishes (202 ``erasing``).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import unicodedata

import structlog
from aiohttp import web
from pydantic import BaseModel, Field, field_validator, model_validator

from ...appkeys import DB, SESSION_ID, SETTINGS
from ...auth.passwords import password_weakness
from ...db.client import utcnow
from ...db.users import public_user
from ...domain import accounts
from ...errors import AppError
from ...metrics import AUTH_EVENTS
from ...web.api import RequestModel, Routes
from ..keys import LOGOUT_ALL_HOOKS, PASSWORDS, REFRESH_TOKENS, USERS
from ..resources import engine_of
from ..revocation import sessions_revoked
from ..security import current_user_id, enforce
from .auth import NAME_MAX, REFRESH_COOKIE, UserEnvelope

log = structlog.get_logger("collabry.auth")
routes = Routes("account")

EXPORT_BLOCK = 256 * 1024



class ProfileChange(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    password: str | None = Field(default=None, max_length=1024)
    currentPassword: str | None = Field(default=None, max_length=1024)

    @field_validator("name", mode="after")
    @classmethod
    def _visible_name(cls, value: str | None) -> str | None:
        """As at registration: trimmed, then checked; no control or invisible characters."""
        if value is None:
            return None
        name = value.strip()
        if not name:
            raise ValueError("the name must contain a visible character")
        if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for ch in name):
            raise ValueError("the name must not contain control or invisible format characters")
        return name

    @model_validator(mode="after")
    def _something(self) -> ProfileChange:
        if self.name is None and self.password is None:
            raise ValueError("give a new name, a new password (with currentPassword), or both")
        return self


@routes.patch(
    "/api/auth/me",
    summary="Change the user's name and/or password (the current password is required for a new one)",
    body=ProfileChange,
    responses={200: UserEnvelope},
)
async def update_me(request: web.Request, body: ProfileChange) -> web.Response:
    user_id = current_user_id(request)
    users = request.app[USERS]
    user = await users.by_id(user_id)
    if user is None:
        raise AppError(status=401, code="unauthorized", message="the account no longer exists")
    if body.password is not None:
        passwords = request.app[PASSWORDS]
        if not body.currentPassword or not await passwords.verify(user.get("password_hash"), body.currentPassword):
            AUTH_EVENTS.labels("password_change_refused").inc()
            raise AppError(status=403, code="invalid_credentials", message="the current password is wrong")
        weakness = password_weakness(body.password)
        if weakness:
            raise AppError(status=400, code="weak_password", message=weakness)
    if body.name is not None:
        await users.set_name(user_id, body.name)
    if body.password is not None:
        await users.set_password_hash(user_id, await request.app[PASSWORDS].hash(body.password))
        store, current = request.app[REFRESH_TOKENS], request[SESSION_ID]
        others = [d["_id"] for d in await store.list_active(user_id) if d["_id"] != current]
        for session_id in others:
            await store.revoke(session_id, user_id=user_id, reason="password_changed")
        await sessions_revoked(request.app, user_id, others, "password_changed")
        AUTH_EVENTS.labels("password_changed").inc()
        log.info("password_changed", sessions_revoked=len(others))
    updated = await users.by_id(user_id)
    return web.json_response({"user": public_user(updated or user)})


@routes.get(
    "/api/account/export",
    summary="Download everything the user owns as a zip (account.json, uploaded files, owned boards)",
    responses={200: "application/zip"},
)
async def export_account(request: web.Request) -> web.StreamResponse:
    user_id = current_user_id(request)
    await enforce(request, "account_export", user_id, request.app[SETTINGS].account_export_limit, fail_open=False)
    with tempfile.TemporaryFile() as archive:
        await accounts.write_export(request.app[DB], request.app[SETTINGS], user_id, archive)
        size = archive.seek(0, 2)
        archive.seek(0)
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="collabry-export-{utcnow():%Y-%m-%d}.zip"',
                "Cache-Control": "no-store",
            }
        )
        response.content_length = size
        await response.prepare(request)
        while block := await asyncio.to_thread(archive.read, EXPORT_BLOCK):
            await response.write(block)
        await response.write_eof()
    AUTH_EVENTS.labels("account_exported").inc()
    log.info("account_exported", bytes=size)
    return response


_ERASURES: set[asyncio.Future[bool]] = set()  # running on after their answer: kept from the collector


def _erasure_done(task: asyncio.Future[bool]) -> None:
    _ERASURES.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("account_erasure_failed", error=str(task.exception()), retry="the worker's account_erasure job")


class AccountDeletion(RequestModel):
    password: str = Field(min_length=1, max_length=1024)


class DeletionAnswer(BaseModel):
    status: str  # deleted | erasing


@routes.delete(
    "/api/account",
    summary="Erase the account and everything it owns (the current password confirms)",
    body=AccountDeletion,
    responses={200: DeletionAnswer, 202: DeletionAnswer},
)
async def delete_account(request: web.Request, body: AccountDeletion) -> web.Response:
    app, user_id = request.app, current_user_id(request)
    user = await app[USERS].by_id(user_id)
    if user is None:
        raise AppError(status=401, code="unauthorized", message="the account no longer exists")
    if not await app[PASSWORDS].verify(user.get("password_hash"), body.password):
        AUTH_EVENTS.labels("account_deletion_refused").inc()
        raise AppError(status=403, code="invalid_credentials", message="the password is wrong")
    store = app[REFRESH_TOKENS]
    active = [d["_id"] for d in await store.list_active(user_id)]
    await store.revoke_all(user_id)
    await sessions_revoked(app, user_id, [*active, request[SESSION_ID]], "account_deleted", notify=False)
    for hook in app.get(LOGOUT_ALL_HOOKS, []):
        await hook(app, user_id)
    # The erasure must not stop half-way because the client hung up: it runs as its own task, and
    # the answer waits for it up to the budget. Whatever is left then is the worker's.
    erasure = asyncio.ensure_future(accounts.erase(app[DB], app[SETTINGS], engine_of(request), user_id))
    _ERASURES.add(erasure)
    erasure.add_done_callback(_erasure_done)
    finished = False
    with contextlib.suppress(TimeoutError):
        finished = await asyncio.wait_for(asyncio.shield(erasure), app[SETTINGS].account_erasure_budget)
    AUTH_EVENTS.labels("account_deleted").inc()
    log.info("account_deleted", finished=finished)
    response = web.json_response(
        {"status": "deleted" if finished else "erasing"}, status=200 if finished else 202,
        headers={"Cache-Control": "no-store"},
    )
    response.del_cookie(REFRESH_COOKIE, path="/api/auth")
    return response
