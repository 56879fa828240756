"""/api/auth: register, login (with brute-force limits and lockout), refresh rotation, sessions."""

from __future__ import annotations

import unicodedata
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from ...appkeys import LIMITER, SESSION_ID, SETTINGS
from ...auth.passwords import password_weakness
from ...auth.refresh import RefreshError, TokenReused
from ...cache.ratelimit import LimiterUnavailable, email_pseudonym
from ...cache.users import user_changed
from ...db.client import iso
from ...db.users import EmailTaken, normalise_email, public_user
from ...errors import AppError
from ...metrics import AUTH_EVENTS, RATELIMIT_DECISIONS
from ...web.api import RequestModel, Routes, parse_model, read_json
from ...web.jsonio import json_bytes_response
from .. import mailer
from ..keys import ACCESS_TOKENS, LOGOUT_ALL_HOOKS, PASSWORDS, REFRESH_TOKENS, USERS
from ..revocation import sessions_revoked
from ..security import current_user_id, ip_of, public_user_document

log = structlog.get_logger("collabry.auth")
routes = Routes("auth")

REFRESH_COOKIE = "collabry_refresh"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


NAME_MAX = 100


class RegisterBody(RequestModel):
    email: str = Field(pattern=EMAIL_PATTERN, max_length=254)
    password: str = Field(max_length=1024)
    name: str = Field(min_length=1, max_length=NAME_MAX)

    @field_validator("name", mode="after")
    @classmethod
    def _visible_name(cls, value: str) -> str:
        """The name as shown to others: trimmed, then checked (not checked, then trimmed)."""
        name = value.strip()
        if not name:
            raise ValueError("the name must contain a visible character")
        if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for ch in name):
            raise ValueError("the name must not contain control or invisible format characters")
        return name


class LoginBody(RequestModel):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class RefreshBody(RequestModel):
    refreshToken: str | None = Field(default=None, max_length=200)


class User(BaseModel):
    id: str
    email: str
    name: str
    plan: str
    createdAt: str | None = None


class UserEnvelope(BaseModel):
    user: User


class TokenPair(BaseModel):
    accessToken: str
    refreshToken: str
    expiresIn: int


class LoginResult(TokenPair):
    user: User


class Session(BaseModel):
    id: str
    createdAt: str | None
    lastUsedAt: str | None
    userAgent: str
    ip: str
    current: bool = False


class SessionList(BaseModel):
    sessions: list[Session]


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _set_refresh_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """Also marks the response ``no-store``: it carries tokens no cache may keep."""
    response.headers.update(NO_STORE)
    settings = request.app[SETTINGS]
    response.set_cookie(
        REFRESH_COOKIE,
        token,
        max_age=settings.refresh_token_ttl,
        path="/api/auth",
        httponly=True,
        samesite="Strict",
        secure=not settings.development,
    )


async def _tokens(request: web.Request, user_id: str, session_id: str, refresh_token: str) -> dict[str, Any]:
    access = request.app[ACCESS_TOKENS]
    return {
        "accessToken": access.issue(user_id, session_id),
        "refreshToken": refresh_token,
        "expiresIn": access.ttl,
    }


@routes.post(
    "/api/auth/register", summary="Create an account", auth=None, body=RegisterBody, responses={201: UserEnvelope}
)
async def register(request: web.Request, body: RegisterBody) -> web.Response:
    weakness = password_weakness(body.password)
    if weakness:
        raise AppError(status=400, code="weak_password", message=weakness)
    password_hash = await request.app[PASSWORDS].hash(body.password)
    confirm = request.app[SETTINGS].email_verification
    try:
        user = await request.app[USERS].create(
            email=body.email, name=body.name, password_hash=password_hash, unverified=confirm
        )
    except EmailTaken:
        raise AppError(status=409, code="email_taken", message="an account with this email exists") from None
    if confirm:
        await mailer.enqueue_for(request.app, "email_verification", user["email"])
    AUTH_EVENTS.labels("register").inc()
    log.info("user_registered", user_id=user["_id"])
    return web.json_response({"user": public_user(user)}, status=201)


@routes.post("/api/auth/login", summary="Log in", auth=None, body=LoginBody, responses={200: LoginResult})
async def login(request: web.Request, body: LoginBody) -> web.Response:
    settings = request.app[SETTINGS]
    limiter = request.app[LIMITER]
    ip = ip_of(request)
    email = normalise_email(body.email)
    # Logs name the account by a keyed hash: an email (or a password typed into the email field)
    # never reaches a log line.
    account = email_pseudonym(settings, email)
    try:
        gate = await limiter.login_gate(ip, email)
    except LimiterUnavailable:
        if not settings.login_fail_open:
            RATELIMIT_DECISIONS.labels("login", "fail_closed").inc()
            log.error("login_limiter_unavailable")
            raise AppError(
                status=503, code="unavailable",
                message="login is temporarily unavailable",
                headers={"Retry-After": "5"},
            ) from None
        RATELIMIT_DECISIONS.labels("login", "fail_open").inc()
        gate = None
    if gate is not None:
        if gate.locked_for > 0:
            AUTH_EVENTS.labels("locked").inc()
            log.warning("login_locked", account=account, client_ip=ip)
            raise AppError(
                status=423, code="account_locked",
                message="too many failed attempts; the account is locked for a while",
                headers={"Retry-After": str(max(1, int(gate.locked_for + 0.999)))},
            )
        if not gate.decision.allowed:
            RATELIMIT_DECISIONS.labels("login", "deny").inc()
            AUTH_EVENTS.labels("login_rate_limited").inc()
            log.warning("ratelimit_hit", rule="login", account=account, client_ip=ip)
            raise AppError(
                status=429, code="rate_limited",
                message="too many failed attempts; try again later",
                headers=gate.decision.headers(),
            )
    user = await request.app[USERS].by_email(email)
    passwords = request.app[PASSWORDS]
    if not await passwords.verify(user["password_hash"] if user else None, body.password) or user is None:
        AUTH_EVENTS.labels("login_failed").inc()
        log.warning("login_failed", account=account, client_ip=ip)
        if gate is not None:
            try:
                if await limiter.login_failed(ip, email):
                    AUTH_EVENTS.labels("lockout").inc()
                    log.warning("account_lockout", account=account, client_ip=ip)
            except LimiterUnavailable:
                log.error("login_failure_not_recorded", account=account)
        raise AppError(status=401, code="invalid_credentials", message="wrong email or password")
    if gate is not None:
        try:
            await limiter.login_succeeded(ip, email)
        except LimiterUnavailable:
            pass
    if user.get("email_unverified"):
        # The right password, but the address is not proven yet: no session until it is.
        AUTH_EVENTS.labels("login_unverified").inc()
        raise AppError(
            status=403, code="email_unverified",
            message="confirm your email address first: open the link we sent you, or ask for a new one",
        )
    if passwords.needs_rehash(user["password_hash"]):
        await request.app[USERS].set_password_hash(user["_id"], await passwords.hash(body.password))
    rotation = await request.app[REFRESH_TOKENS].start(
        user["_id"], user_agent=request.headers.get("User-Agent", ""), ip=ip
    )
    AUTH_EVENTS.labels("login").inc()
    log.info("login", user_id=user["_id"], session_id=rotation.session_id)
    payload = {
        "user": public_user(user),
        **await _tokens(request, user["_id"], rotation.session_id, rotation.refresh_token),
    }
    response = web.json_response(payload)
    _set_refresh_cookie(request, response, rotation.refresh_token)
    return response


async def _presented_refresh_token(request: web.Request) -> str:
    data = await read_json(request)
    body = parse_model(RefreshBody, data)
    token = body.refreshToken or request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise AppError(status=401, code="unauthorized", message="a refresh token is required")
    return token


@routes.post("/api/auth/refresh", summary="Rotate the refresh token", auth=None, body=None, responses={200: TokenPair})
async def refresh(request: web.Request) -> web.Response:
    token = await _presented_refresh_token(request)
    try:
        rotation = await request.app[REFRESH_TOKENS].rotate(token)
    except TokenReused as exc:
        AUTH_EVENTS.labels("token_reused").inc()
        log.warning("refresh_token_reused", user_id=exc.user_id, client_ip=ip_of(request))
        await sessions_revoked(request.app, exc.user_id, [exc.session_id], "token_reused")
        raise AppError(
            status=401, code="token_reused", message="this refresh token was already used; the session is revoked"
        ) from None
    except RefreshError:
        AUTH_EVENTS.labels("refresh_failed").inc()
        raise AppError(status=401, code="unauthorized", message="the refresh token is invalid or expired") from None
    AUTH_EVENTS.labels("refresh").inc()
    response = web.json_response(await _tokens(request, rotation.user_id, rotation.session_id, rotation.refresh_token))
    _set_refresh_cookie(request, response, rotation.refresh_token)
    return response


@routes.post("/api/auth/logout", summary="Revoke this session", responses={204: None})
async def logout(request: web.Request) -> web.Response:
    user_id = current_user_id(request)
    await request.app[REFRESH_TOKENS].revoke(request[SESSION_ID], user_id=user_id)
    await sessions_revoked(request.app, user_id, [request[SESSION_ID]], "logout")
    await user_changed(user_id)
    AUTH_EVENTS.labels("logout").inc()
    response = web.Response(status=204)
    response.del_cookie(REFRESH_COOKIE, path="/api/auth")
    return response


@routes.post("/api/auth/logout-all", summary="Revoke every session of the user", responses={204: None})
async def logout_all(request: web.Request) -> web.Response:
    user_id = current_user_id(request)
    store = request.app[REFRESH_TOKENS]
    active = [d["_id"] for d in await store.list_active(user_id)]
    count = await store.revoke_all(user_id)
    # The user's sockets are all disconnected by the hooks below, whatever session they belong to.
    await sessions_revoked(request.app, user_id, [*active, request[SESSION_ID]], "logout_all", notify=False)
    await user_changed(user_id)
    AUTH_EVENTS.labels("logout_all").inc()
    log.info("logout_all", revoked=count)
    for hook in request.app.get(LOGOUT_ALL_HOOKS, []):
        await hook(request.app, user_id)
    response = web.Response(status=204)
    response.del_cookie(REFRESH_COOKIE, path="/api/auth")
    return response


@routes.get("/api/auth/me", summary="The current user", responses={200: UserEnvelope})
async def me(request: web.Request) -> web.Response:
    """From the user cache when the request's Redis script found a current copy (no database
    read); otherwise from the database, then cached (``public_user_document``)."""
    document = await public_user_document(request, current_user_id(request))
    return json_bytes_response(b'{"user":' + document + b"}")


@routes.get("/api/auth/sessions", summary="Active sessions (logins) of the user", responses={200: SessionList})
async def sessions(request: web.Request) -> web.Response:
    user_id = current_user_id(request)
    docs = await request.app[REFRESH_TOKENS].list_active(user_id)
    return web.json_response(
        {
            "sessions": [
                {
                    "id": d["_id"],
                    "createdAt": iso(d.get("created_at")),
                    "lastUsedAt": iso(d.get("last_used_at")),
                    "userAgent": d.get("user_agent", ""),
                    "ip": d.get("ip", ""),
                    "current": d["_id"] == request.get(SESSION_ID),
                }
                for d in docs
            ]
        }
    )


@routes.delete("/api/auth/sessions/{id}", summary="Revoke one session", responses={204: None})
async def revoke_session(request: web.Request) -> web.Response:
    user_id = current_user_id(request)
    session_id = request.match_info["id"]
    if not await request.app[REFRESH_TOKENS].revoke(session_id, user_id=user_id, reason="revoked"):
        raise AppError(status=404, code="not_found", message="session not found")
    await sessions_revoked(request.app, user_id, [session_id], "revoked")
    return web.Response(status=204)

