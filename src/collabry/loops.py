"""Background loops that end when their owner stops them, even when a cancel is lost.

Some loops must outlive errors by design: a stream's heartbeat, a job's lease renewal, the usage
write-behind, the index snapshots. Cancelling such a loop is not enough to end it on Python 3.11:
``asyncio.wait_for``, which redis-py puts around each command's write when a socket timeout is set,
can drop a cancel that arrives just as the write completes. The loop then goes on for ever, and
whoever awaits it on the way down hangs. So each of these loops also waits on a ``Stop``, and its
owner ends it with ``Stop.stop(task)``::

    stop = Stop()
    task = asyncio.create_task(beat(stop))  # while await stop.sleep(interval): ...
    ...
    await stop.stop(task)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger("collabry.loops")


class Stop:
    """A stop request that a loop sees at its next pause whatever happened to the cancel."""

    def __init__(self) -> None:
        self._requested = asyncio.Event()

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    async def sleep(self, seconds: float) -> bool:
        """Pause for ``seconds``; False at once when a stop is (or gets) requested, else True."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._requested.wait()
        return not self.requested

    def request(self) -> None:
        """Ask the loops waiting on this to end at their next pause (at once if pausing)."""
        self._requested.set()

    async def stop(self, task: asyncio.Future[Any]) -> None:
        """Request the stop, cancel ``task`` and wait for it to end; raises what it raised."""
        self.request()
        task.cancel()
        # Unlike awaiting the task under a suppressed CancelledError, this lets a cancel of the
        # caller itself through.
        await asyncio.wait([task])
        if not task.cancelled():
            task.result()


async def retry_forever(
    name: str, action: Callable[[], Awaitable[object]], stop: Stop, *, base: float = 0.2, cap: float = 10.0
) -> None:
    """Run ``action()`` until it succeeds or ``stop``, with exponential backoff and full jitter."""
    delay = base
    while True:
        try:
            await action()
            return
        except Exception as exc:
            log.warning("retrying", action=name, error=str(exc), delay=round(delay, 2))
            if not await stop.sleep(random.uniform(0, delay)):
                return
            delay = min(cap, delay * 2)
