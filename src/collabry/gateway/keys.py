"""AppKeys owned by the gateway."""

from __future__ import annotations

from aiohttp import web

from ..auth.passwords import Passwords
from ..auth.refresh import RefreshTokenStore
from ..auth.tokens import AccessTokens
from ..db.users import UserRepository

ACCESS_TOKENS = web.AppKey("collabry.access_tokens", AccessTokens)
PASSWORDS = web.AppKey("collabry.passwords", Passwords)
REFRESH_TOKENS = web.AppKey("collabry.refresh_tokens", RefreshTokenStore)
USERS = web.AppKey("collabry.users", UserRepository)
