"""Who is calling: bearer-token authentication, the client's address, the global rate limit.

The hot path asks Redis once per request: ``global_limit_middleware`` verifies the bearer token
(CPU only) and runs one script (``RateLimiter.check_request``) for the global per-IP rule, the
session's revocation, for routes that need it the cached public user (cache/users.py) and, for
``METERED_AI_ROUTES``, the per-user AI rule and a unit of the plan's daily AI quota
(``metering.meter_ai`` reads that answer; ``metering.unused_ai_unit_middleware`` gives the unit back
when the route refused the request before taking it). ``authenticate_user`` then uses that answer
instead of asking again; requests that did not pass the middleware (exempt paths, Redis
unreachable) take the old path.
"""

from __future__ import annotations

import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from ..appkeys import CLIENT_IP, LIMITER, SESSION_ID, SETTINGS, USER_ID
from ..auth.tokens import AccessClaims, AccessTokens, InvalidToken
from ..cache.quota import Counter
from ..cache.ratelimit import Decision, LimiterUnavailable, MeteredAI, RequestCheck
from ..config import Rule
from ..db.users import public_user
from ..domain.usage import today
from ..errors import AppError
from ..metrics import AUTH_EVENTS, RATELIMIT_DECISIONS
from ..web.clientip import client_ip
from ..web.errors import error_response
from ..web.jsonio import dumps
from .keys import ACCESS_CLAIMS, QUOTA, REQUEST_CHECK, USER_CACHE, USERS, VERIFIED_TOKENS
from .revocation import is_revoked

log = structlog.get_logger("collabry.security")


class VerifiedTokens:
    """The claims of access tokens verified recently, by the exact token string: a client sends the
    same token with every request for its lifetime, and checking its HMAC and parsing its JSON again
    each time was a tenth of the gateway's CPU. Only a string that verified is remembered (so a
    forged one is checked every time), its expiry is checked on every use, exactly as the JWT
    library does, and the table is bounded (cleared when full). Revocation is separate: it is asked
    of Redis on every request."""

    def __init__(self, tokens: AccessTokens, size: int = 8192) -> None:
        self.tokens = tokens
        self.size = size
        self._seen: dict[str, AccessClaims] = {}

    def verify(self, token: str) -> AccessClaims:
        claims = self._seen.get(token)
        if claims is not None and claims.expires_at > time.time():
            return claims
        claims = self.tokens.verify(token)  # raises InvalidToken
        if len(self._seen) >= self.size:
            self._seen.clear()
        self._seen[token] = claims
        return claims


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate_user(request: web.Request) -> None:
    claims = request.get(ACCESS_CLAIMS)
    if claims is None:
        token = bearer_token(request)
        if token is None:
            raise AppError(status=401, code="unauthorized", message="a bearer access token is required")
        try:
            claims = request.app[VERIFIED_TOKENS].verify(token)
        except InvalidToken:
            AUTH_EVENTS.labels("invalid_token").inc()
            raise AppError(status=401, code="unauthorized", message="the access token is invalid or expired") from None
    checked = request.get(REQUEST_CHECK)
    if checked is not None and claims.session_id:
        revoked = checked.revoked  # asked in the middleware's round trip
    else:
        revoked = await is_revoked(request.app, claims.session_id)
    if revoked:
        AUTH_EVENTS.labels("revoked_token").inc()
        raise AppError(status=401, code="unauthorized", message="the session of this access token was revoked")
    request[USER_ID] = claims.user_id
    request[SESSION_ID] = claims.session_id
    structlog.contextvars.bind_contextvars(user_id=claims.user_id)


def current_user_id(request: web.Request) -> str:
    user_id = request.get(USER_ID)
    if not isinstance(user_id, str):  # a route declared without auth asked for the user
        raise AppError(status=401, code="unauthorized", message="authentication required")
    return user_id


def ip_of(request: web.Request) -> str:
    ip = request.get(CLIENT_IP)
    if ip is None:
        ip = client_ip(request.remote, request.headers.get("X-Forwarded-For"), request.app[SETTINGS].trusted_proxies)
        request[CLIENT_IP] = ip
    return str(ip)


async def enforce(
    request: web.Request, rule_name: str, subject: str, rule: Rule, *, fail_open: bool
) -> Decision | None:
    """Consume one unit of ``rule`` for ``subject``; raise 429 when exhausted.

    Returns the decision (for headers) or None when Redis was unreachable and the rule fails open.
    """
    try:
        decision = await request.app[LIMITER].hit(rule_name, subject, rule)
    except LimiterUnavailable as exc:
        _unavailable(rule_name, exc, fail_open=fail_open)
        return None
    return decided(rule_name, subject, decision)


def _unavailable(rule_name: str, exc: LimiterUnavailable, *, fail_open: bool) -> None:
    if fail_open:
        RATELIMIT_DECISIONS.labels(rule_name, "fail_open").inc()
        log.warning("ratelimit_fail_open", rule=rule_name, error=str(exc))
        return
    RATELIMIT_DECISIONS.labels(rule_name, "fail_closed").inc()
    log.error("ratelimit_fail_closed", rule=rule_name, error=str(exc))
    raise AppError(
        status=503, code="unavailable",
        message="temporarily unavailable, try again shortly",
        headers={"Retry-After": "5"},
    )


def decided(rule_name: str, subject: str, decision: Decision) -> Decision:
    if not decision.allowed:
        RATELIMIT_DECISIONS.labels(rule_name, "deny").inc()
        log.warning("ratelimit_hit", rule=rule_name, subject=subject)
        raise AppError(status=429, code="rate_limited", message="too many requests", headers=decision.headers())
    RATELIMIT_DECISIONS.labels(rule_name, "allow").inc()
    return decision


EXEMPT_PREFIXES = ("/health", "/ready", "/metrics", "/socket.io")
AI_RULE = "ai"  # the per-user AI rate rule: its Redis keys and its metric label
# Routes whose answer is the public user: the request's script also reads its cached copy.
USER_DOCUMENT_ROUTES = frozenset({("GET", "/api/auth/me")})
# Routes that meter the AI quota against the user's plan, which they take from the same copy.
USER_DOCUMENT_PREFIX = ("POST", "/api/ai/")
# The routes that spend the AI rule and a unit of the AI quota (``metering.meter_ai``): the request's
# script spends both, so such a request also asks Redis once.
METERED_AI_ROUTES = frozenset(
    ("POST", f"/api/ai/{name}") for name in ("chat", "summarize", "quiz", "flashcards", "mindmap")
)


def needs_user_document(request: web.Request) -> bool:
    method, prefix = USER_DOCUMENT_PREFIX
    return (request.method, request.path) in USER_DOCUMENT_ROUTES or (
        request.method == method and request.path.startswith(prefix)
    )


async def _check_request(request: web.Request, ip: str) -> Decision | None:
    """The global rule for ``ip`` and, when the request carries a valid token, its session's
    revocation (and the cached user where ``needs_user_document``): one round trip. Raises 429/503."""
    app = request.app
    settings = app[SETTINGS]
    token = bearer_token(request)
    claims = None
    if token is not None:
        try:
            claims = app[VERIFIED_TOKENS].verify(token)
        except InvalidToken:
            pass  # authenticate_user answers 401 (after the limit, as before) and counts it
    user_keys = None
    metered = None
    if claims is not None:
        request[ACCESS_CLAIMS] = claims
        if needs_user_document(request):
            user_keys = app[USER_CACHE].key_pair(claims.user_id)
            if (request.method, request.path) in METERED_AI_ROUTES:
                counter = Counter(claims.user_id, today(), "ai")
                hash_key, pending_key = app[QUOTA].keys_of(counter)
                metered = MeteredAI(AI_RULE, claims.user_id, settings.ai_limit, (hash_key, pending_key), counter.member)
    try:
        checked: RequestCheck = await app[LIMITER].check_request(
            "global", ip, settings.global_limit,
            session_id=claims.session_id if claims is not None else None, user_keys=user_keys, metered=metered,
        )
    except LimiterUnavailable as exc:
        _unavailable("global", exc, fail_open=settings.global_fail_open)
        return None
    if claims is not None:
        request[REQUEST_CHECK] = checked
    return decided("global", ip, checked.decision)


async def public_user_document(request: web.Request, user_id: str) -> bytes:
    """The caller's public user as JSON: the copy the request's script found (no database read),
    or else the database's, then cached under the generation seen before the read (cache/users.py:
    every change to the user, its plan included, invalidates the copy). 401 when the account is gone."""
    checked: RequestCheck | None = request.get(REQUEST_CHECK)
    if checked is not None and checked.user_document is not None:
        return checked.user_document
    user = await request.app[USERS].by_id(user_id)
    if user is None:
        raise AppError(status=401, code="unauthorized", message="the account no longer exists")
    document = dumps(public_user(user))
    if checked is not None and checked.generation is not None:
        await request.app[USER_CACHE].fill(user_id, checked.generation, document)
    return document


@web.middleware
async def global_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The global per-IP rule, applied to every API request by every replica through Redis."""
    ip = ip_of(request)
    if request.path.startswith(EXEMPT_PREFIXES) or request.method == "OPTIONS":
        return await handler(request)
    try:
        decision = await _check_request(request, ip)
    except AppError as exc:
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers)
    headers = decision.headers() if decision is not None else {}
    try:
        response = await handler(request)
    except AppError as exc:  # error answers carry the limit headers too
        exc.headers = {**headers, **exc.headers}
        raise
    except web.HTTPException as exc:
        if exc.status >= 400:
            exc.headers.update(headers)
        raise
    if not response.prepared:
        for name, value in headers.items():  # a route's own, stricter rule keeps its headers
            response.headers.setdefault(name, value)
    return response
