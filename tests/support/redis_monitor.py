"""What Redis received while a piece of test code ran, watched with MONITOR: for tests that assert
how many round trips, or which commands, a request costs."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis

T = TypeVar("T")


async def commands_during(redis_url: str, action: Callable[[], Awaitable[T]]) -> tuple[T, list[dict[str, Any]]]:
    """``action()``'s result and every command Redis received from its start until a marker sent
    after it ended (MONITOR's entries: ``command``, ``client_type``, ...), from any client."""
    watcher, marking = Redis.from_url(redis_url), Redis.from_url(redis_url)
    marker = "end-of-watch-" + secrets.token_hex(6)
    await marking.ping()  # its connection is set up before watching starts: none of that is seen
    seen: list[dict[str, Any]] = []
    try:
        async with watcher.monitor() as monitor:
            result = await action()
            await marking.echo(marker)
            while True:
                entry = await monitor.next_command()
                if marker in entry["command"]:
                    return result, seen
                seen.append(entry)
    finally:
        await watcher.aclose()
        await marking.aclose()
