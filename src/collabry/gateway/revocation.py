"""Revoked sessions, checked on every authenticated request without a database read.

Access tokens are stateless JWTs; revoking a session (logout, a session deleted, refresh-token
reuse, logout-all) writes ``revoked:<session id>`` to Redis with the access tokens' lifetime as
its expiry, and ``authenticate_user`` refuses a token whose session has that key: one EXISTS per
request, and after the expiry every token the session could have issued has expired anyway.

Then the session's sockets are told ``session_revoked`` and disconnected on every replica
(``SESSION_REVOKED_HOOKS``, which real time registers).
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from aiohttp import web

from ..appkeys import REDIS, SETTINGS
from ..cache.client import REDIS_ERRORS
from ..cache.redis_keys import Keys
from .keys import SESSION_REVOKED_HOOKS

log = structlog.get_logger("collabry.auth")



def _keys(app: web.Application) -> Keys:
    return Keys(app[SETTINGS].redis_prefix)


async def is_revoked(app: web.Application, session_id: str) -> bool:
    """True when the session was revoked; a Redis outage answers False (the token still expires
    within its lifetime, and refresh, which reads the database, stays closed)."""
    if not session_id:
        return False
    try:
        return bool(await app[REDIS].exists(_keys(app).revoked_session(session_id)))
    except REDIS_ERRORS as exc:
        log.warning("revocation_check_unavailable", error=str(exc))
        return False


async def sessions_revoked(
    app: web.Application, user_id: str, session_ids: Iterable[str], reason: str, *, notify: bool = True
) -> None:
    """Record the revocation for access tokens, then (``notify``) run the hooks (sockets)."""
    ids = [s for s in session_ids if s]
    if not ids:
        return
    ttl = max(1, app[SETTINGS].access_token_ttl)
    keys = _keys(app)
    try:
        async with app[REDIS].pipeline(transaction=False) as pipe:
            for session_id in ids:
                pipe.set(keys.revoked_session(session_id), reason, ex=ttl)
            await pipe.execute()
    except REDIS_ERRORS as exc:  # the refresh family is revoked in the database already
        log.error("revocation_not_recorded", user_id=user_id, error=str(exc))
    for hook in app.get(SESSION_REVOKED_HOOKS, []) if notify else []:
        await hook(app, user_id, ids, reason)
