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

from redis.asyncio import Redis

from ..config import Rule, Settings
from .client import REDIS_ERRORS, AutoPipeline, LuaScript, lua_source
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
class MeteredAI:
    """What a metered AI request adds to its one script (``check_request``): a unit of its per-user
    rate rule and a unit of today's AI counter, against the daily limit of the plan in the user's
    cached public document (``cache/quota.lua`` keys: the counter's hash and the pending set)."""

    rule_name: str
    subject: str
    rule: Rule
    counter_keys: tuple[str, str]
    counter_member: str


@dataclass(frozen=True, slots=True)
class RequestCheck:
    """The answer of ``check_request``: the global rule's decision, whether the session is revoked,
    (when asked for) the user cache's generation and its document if current, and (``MeteredAI``,
    when the document was current) the AI rule's decision and the quota unit: 1 spent, 0 none left
    (or the AI rule refused), -1 the counter must be seeded from the database first."""

    decision: Decision
    revoked: bool
    generation: str | None = None
    user_document: bytes | None = None
    ai_decision: Decision | None = None
    ai_unit: int | None = None


@dataclass(frozen=True, slots=True)
class LoginGate:
    locked_for: float  # seconds the account stays locked, 0 if not locked
    decision: Decision  # whether this (IP, email) may try once more


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
        self._hit = LuaScript(lua_source("gcra.lua", "ratelimit.lua"))
        self._request = LuaScript(lua_source("gcra.lua", "quota_take.lua", "request.lua"))
        self._gate = LuaScript(lua_source("window.lua", "login_gate.lua"))
        self._failed = LuaScript(lua_source("window.lua", "login_failed.lua"))
        # request.lua's table of daily AI limits: the first plan's for a plan it does not know (as
        # Settings.plan falls back), then each plan's by id.
        self._ai_daily_limits: list[str | int] = [settings.plans[0].limits.ai_per_day]
        for plan in settings.plans:
            self._ai_daily_limits += [plan.id, plan.limits.ai_per_day]

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
        metered: MeteredAI | None = None,
    ) -> RequestCheck:
        """One unit of ``rule`` for ``subject``, plus (``session_id``) whether that session was
        revoked, (``user_keys``: generation and document keys) the cached user and (``metered``,
        with ``user_keys``) the AI rule and a quota unit: one round trip."""
        keys = [self.keys.limit(rule_name, subject)]
        args: list[str | int | float] = [_interval_ms(rule), rule.limit, 1, 1]
        if session_id:
            keys.append(self.keys.revoked_session(session_id))
            if user_keys is not None:
                keys.extend(user_keys)
                if metered is not None:
                    keys.append(self.keys.limit(metered.rule_name, metered.subject))
                    keys.extend(metered.counter_keys)
                    args += [_interval_ms(metered.rule), metered.rule.limit, metered.counter_member]
                    args += self._ai_daily_limits
        try:
            raw = await self._request(self.pipe, keys, args)
        except REDIS_ERRORS as exc:
            raise LimiterUnavailable(str(exc)) from exc
        generation = raw[5].decode() if len(raw) > 5 else None
        document = raw[6] if len(raw) > 6 else None
        if len(raw) > 11 and metered is not None:
            ai_decision = self._decision(metered.rule, raw[7:11])
            return RequestCheck(
                self._decision(rule, raw), bool(int(raw[4])), generation, document, ai_decision, int(raw[11])
            )
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
