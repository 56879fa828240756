"""AppKeys owned by the gateway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..auth.passwords import Passwords
from ..auth.refresh import RefreshTokenStore
from ..auth.tokens import AccessTokens
from ..db.users import UserRepository

ACCESS_TOKENS = web.AppKey("collabry.access_tokens", AccessTokens)
PASSWORDS = web.AppKey("collabry.passwords", Passwords)
REFRESH_TOKENS = web.AppKey("collabry.refresh_tokens", RefreshTokenStore)
USERS = web.AppKey("collabry.users", UserRepository)
# Called as hook(app, user_id) after logout-all revoked the user's sessions (real time disconnects
# the user's sockets on every replica).
LogoutAllHook = Callable[[web.Application, str], Awaitable[None]]
LOGOUT_ALL_HOOKS = web.AppKey("collabry.logout_all_hooks", list[LogoutAllHook])
