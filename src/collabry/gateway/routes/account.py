"""``PATCH /api/auth/me``: the user edits their profile (name) and changes their password.

A password change needs the current password; it revokes every other session of the account (their
refresh tokens, access tokens and sockets), while the session that made the change stays signed in.
"""

from __future__ import annotations

import unicodedata

import structlog
from aiohttp import web
from pydantic import Field, field_validator, model_validator

from ...appkeys import SESSION_ID
from ...auth.passwords import password_weakness
from ...db.users import public_user
from ...metrics import AUTH_EVENTS
from ...web.api import RequestModel, Routes
from ...web.errors import ApiError
from ..keys import PASSWORDS, REFRESH_TOKENS, USERS
from ..revocation import sessions_revoked
from ..security import current_user_id
from .auth import NAME_MAX, UserEnvelope

log = structlog.get_logger("collabry.auth")
routes = Routes("account")


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
        raise ApiError(401, "unauthorized", "the account no longer exists")
    if body.password is not None:
        passwords = request.app[PASSWORDS]
        if not body.currentPassword or not await passwords.verify(user.get("password_hash"), body.currentPassword):
            AUTH_EVENTS.labels("password_change_refused").inc()
            raise ApiError(403, "invalid_credentials", "the current password is wrong")
        weakness = password_weakness(body.password)
        if weakness:
            raise ApiError(400, "weak_password", weakness)
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
