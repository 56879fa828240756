"""Every AppKey of the gateway process (the settings, database and Redis keys every process shares
are in ``collabry.appkeys``). ``create_app`` fills them, each through its ``cleanup_ctx``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..auth.passwords import Passwords
from ..auth.refresh import RefreshTokenStore
from ..auth.tokens import AccessClaims, AccessTokens
from ..cache.quota import QuotaCounters
from ..cache.ratelimit import RequestCheck
from ..cache.users import UserCache
from ..db.users import UserRepository
from ..domain.usage import UsageWriteBehind

if TYPE_CHECKING:
    from ..domain.notifications import UserEmitter
    from ..engine_client import EngineClient
    from .realtime.server import RealtimeHub
    from .relay import Relays

ACCESS_TOKENS = web.AppKey("collabry.access_tokens", AccessTokens)
PASSWORDS = web.AppKey("collabry.passwords", Passwords)
REFRESH_TOKENS = web.AppKey("collabry.refresh_tokens", RefreshTokenStore)
USERS = web.AppKey("collabry.users", UserRepository)
USER_CACHE = web.AppKey("collabry.user_cache", UserCache)  # the public user, for /me (cache/users.py)
ENGINE: web.AppKey[EngineClient] = web.AppKey("collabry.engine_client")
# the Socket.IO emitter that domain notifications are pushed through (write-only manager)
EMITTER: web.AppKey[UserEmitter] = web.AppKey("collabry.domain_emitter")
RELAYS: web.AppKey[Relays] = web.AppKey("collabry.sse_relays")
HUB: web.AppKey[RealtimeHub] = web.AppKey("collabry.realtime_hub")
QUOTA = web.AppKey("collabry.quota", QuotaCounters)  # the AI quota's Redis counters
USAGE_WRITER = web.AppKey("collabry.usage_writer", UsageWriteBehind)  # persists them behind requests
OPENAPI = web.AppKey("collabry.openapi", dict[str, Any])

# Called as hook(app, user_id) after logout-all revoked the user's sessions (real time disconnects
# the user's sockets on every replica).
LogoutAllHook = Callable[[web.Application, str], Awaitable[None]]
LOGOUT_ALL_HOOKS = web.AppKey("collabry.logout_all_hooks", list[LogoutAllHook])
# hook(app, user_id, session_ids, reason): after sessions were revoked
SessionRevokedHook = Callable[[web.Application, str, list[str], str], Awaitable[None]]
SESSION_REVOKED_HOOKS = web.AppKey("collabry.session_revoked_hooks", list[SessionRevokedHook])

if TYPE_CHECKING:
    from .security import VerifiedTokens
VERIFIED_TOKENS: web.AppKey[VerifiedTokens] = web.AppKey("collabry.verified_tokens")  # gateway/security.py

# Per request: the access token's claims and the one Redis answer (global limit, revocation, cached
# user), both found by the global limit middleware before the route runs (gateway/security.py).
ACCESS_CLAIMS = web.RequestKey("collabry.access_claims", AccessClaims)
REQUEST_CHECK = web.RequestKey("collabry.request_check", RequestCheck)
# Set when the route took the AI unit that the request's script spent (gateway/metering.py).
AI_UNIT_TAKEN = web.RequestKey("collabry.ai_unit_taken", bool)
