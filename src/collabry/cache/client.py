"""The redis-py asyncio client with retries, backoff and jitter on connection errors."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from ..config import Settings

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def create_redis(settings: Settings, *, timeout: float = 2.0, retries: int = 1) -> Redis:
    # One quick retry hides a dropped idle connection; an outage still surfaces within about a
    # second so callers can fail open or closed instead of hanging.
    return Redis.from_url(
        settings.redis_url,
        decode_responses=False,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        retry=Retry(EqualJitterBackoff(cap=0.5, base=0.05), retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
