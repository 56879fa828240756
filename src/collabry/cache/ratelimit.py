"""Rate limits shared by every replica: GCRA in a Lua script, one Redis round trip per check.

Login failures are not paced but counted in sliding windows (a sorted set of failure times per
subject): the contract says "at most N failures in any 15 minutes", which pacing does not give.
Emails never appear in key names: the subject is a keyed hash (``email_pseudonym``).

The scripts are called by SHA straight through the connection (``client.LuaScript``: loaded
again once when a restarted Redis has forgotten them). ``check_request`` answers everything an
API request asks Redis (the global rule, the session's revocation, the cached user for ``/me``)
in one EVALSHA. A Redis outage raises ``LimiterUnavailable``; the caller
decides whether its rule fails open or closed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis

from ..config import Rule, Settings
from .client import REDIS_ERRORS, AutoPipeline, LuaScript
from .redis_keys import Keys


class LimiterUnavailable(Exception):
    """Redis could not be asked; the rule's fail-open/closed policy applies."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(math.ceil(self.reset_after)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


@dataclass(frozen=True, slots=True)
class RequestCheck:
    """The answer of ``check_request``: the global rule's decision, whether the session is revoked,
    and (when asked for) the user cache's generation and its document if current."""

    decision: Decision
    revoked: bool
    generation: str | None = None
    user_document: bytes | None = None


@dataclass(frozen=True, slots=True)
class LoginGate:
    locked_for: float  # seconds the account stays locked, 0 if not locked
    decision: Decision  # whether this (IP, email) may try once more


def _script(name: str, library: str = "gcra.lua") -> str:
    files = resources.files("collabry.cache")
    return files.joinpath(library).read_text() + "\n" + files.joinpath(name).read_text()


def email_pseudonym(settings: Settings, email: str) -> str:
    """A keyed hash of a (normalised) email, for Redis key names and log lines.

    Stable for one deployment (keyed with the JWT secret), so an operator can still group the
    failures of one account, but an email cannot be read from or guessed against it without the key.
    """
    key = ("collabry-email-pseudonym:" + settings.jwt_secret).encode()
    return hmac.new(key, email.encode(), hashlib.sha256).hexdigest()[:24]


def _window_ms(rule: Rule) -> int:
    return max(1, int(rule.period * 1000))


def _interval_ms(rule: Rule) -> float:
    return rule.period * 1000.0 / rule.limit


class RateLimiter:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)
        self.pipe = AutoPipeline(redis)  # concurrent checks share one write (cache/client.py)
        self._hit = LuaScript(_script("ratelimit.lua"))
        self._request = LuaScript(_script("request.lua"))
        self._gate = LuaScript(_script("login_gate.lua", "window.lua"))
        self._failed = LuaScript(_script("login_failed.lua", "window.lua"))

    async def hit(self, rule_name: str, subject: str, rule: Rule, *, cost: int = 1, commit: bool = True) -> Decision:
        key = self.keys.limit(rule_name, subject)
        try:
            raw = await self._hit(self.pipe, [key], [_interval_ms(rule), rule.limit, cost, int(commit)])
        except REDIS_ERRORS as exc:
            raise LimiterUnavailable(str(exc)) from exc
        return self._decision(rule, raw)

    async def check_request(
        self,
        rule_name: str,
        subject: str,
        rule: Rule,
        *,
        session_id: str | None = None,
        user_keys: tuple[str, str] | None = None,
    ) -> RequestCheck:
        """One unit of ``rule`` for ``subject``, plus (``session_id``) whether that session was
        revoked and (``user_keys``: generation and document keys) the cached user: one round trip."""
        keys = [self.keys.limit(rule_name, subject)]
        if session_id:
            keys.append(self.keys.revoked_session(session_id))
            if user_keys is not None:
                keys.extend(user_keys)
        try:
            raw = await self._request(self.pipe, keys, [_interval_ms(rule), rule.limit, 1, 1])
        except REDIS_ERRORS as exc:
            raise LimiterUnavailable(str(exc)) from exc
        generation = raw[5].decode() if len(raw) > 5 else None
        document = raw[6] if len(raw) > 6 else None
        return RequestCheck(self._decision(rule, raw), bool(int(raw[4])), generation, document)

    def _login_keys(self, ip: str, email: str) -> tuple[str, str, str]:
        """(IP, email) failures, account failures, account lock: keyed by the email's pseudonym."""
        subject = email_pseudonym(self.settings, email)
        return (
            self.keys.limit("loginw", f"{ip}|{subject}"),
            self.keys.limit("accountw", subject),
            self.keys.account_lock(subject),
        )

    async def login_gate(self, ip: str, email: str) -> LoginGate:
        rule = self.settings.login_failures
        pair, _, lock = self._login_keys(ip, email)
        try:
            raw = await self._gate(self.redis, [pair, lock], [_window_ms(rule), rule.limit])
        except REDIS_ERRORS as exc:
            raise LimiterUnavailable(str(exc)) from exc
        return LoginGate(locked_for=int(raw[0]) / 1000.0, decision=self._decision(rule, raw[1:]))

    async def login_failed(self, ip: str, email: str) -> bool:
        """Record a failure; True when it locked the account."""
        ip_rule, acct_rule = self.settings.login_failures, self.settings.account_failures
        keys = list(self._login_keys(ip, email))
        args = [
            _window_ms(ip_rule),
            ip_rule.limit,
            _window_ms(acct_rule),
            acct_rule.limit,
            self.settings.account_lock_seconds * 1000,
        ]
        try:
            raw = await self._failed(self.redis, keys, args)
        except REDIS_ERRORS as exc:
            raise LimiterUnavailable(str(exc)) from exc
        return bool(int(raw[0]))

    async def login_succeeded(self, ip: str, email: str) -> None:
        try:
            await self.redis.delete(self._login_keys(ip, email)[0])
        except REDIS_ERRORS as exc:
            raise LimiterUnavailable(str(exc)) from exc

    @staticmethod
    def _decision(rule: Rule, raw: list[int]) -> Decision:
        allowed, remaining, reset_ms, retry_ms = (int(v) for v in raw[:4])
        return Decision(bool(allowed), rule.limit, remaining, reset_ms / 1000.0, retry_ms / 1000.0)
