"""Waiting in tests: poll a condition until it holds, with one deadline and one failure message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

INTERVAL = 0.05  # seconds between checks


async def eventually(check: Callable[[], Awaitable[T]] | Callable[[], T], timeout: float = 10.0,
                     what: str = "condition", *, interval: float = INTERVAL) -> T:
    """Poll ``check`` (sync or async) until it returns something truthy, and return that.

    Fails with ``AssertionError`` naming ``what`` after ``timeout`` seconds. An assertion the check
    raises fails the wait at once: a check returns False for "not yet", it asserts for "never".
    """
    deadline = time.monotonic() + timeout
    while True:
        result: Any = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


def eventually_sync(check: Callable[[], T], timeout: float = 10.0, what: str = "condition", *,
                    interval: float = INTERVAL) -> T:
    """``eventually`` for synchronous tests (no event loop): blocks between checks."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)
