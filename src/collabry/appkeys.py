"""Typed keys for everything an aiohttp Application holds; declared once to avoid import cycles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from .cache.ratelimit import RateLimiter
from .config import Settings
from .db.client import Database
from .lifecycle import DRAIN, Drain

ReadyCheck = Callable[[], Awaitable[None]]

SETTINGS = web.AppKey("collabry.settings", Settings)
MONGO = web.AppKey("collabry.mongo", AsyncMongoClient)
DB = web.AppKey("collabry.db", Database)
REDIS = web.AppKey("collabry.redis", Redis)
LIMITER = web.AppKey("collabry.limiter", RateLimiter)
READY_CHECKS = web.AppKey("collabry.ready_checks", dict[str, ReadyCheck])
PROCESS = web.AppKey("collabry.process", str)

__all__ = ["DB", "DRAIN", "LIMITER", "MONGO", "PROCESS", "READY_CHECKS", "REDIS", "SETTINGS", "Drain", "ReadyCheck"]

# Per-request storage (web.RequestKey): who is calling and how to trace it.
REQUEST_ID = web.RequestKey("collabry.request_id", str)
USER_ID = web.RequestKey("collabry.user_id", str)
SESSION_ID = web.RequestKey("collabry.session_id", str)
CLIENT_IP = web.RequestKey("collabry.client_ip", str)
