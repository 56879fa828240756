"""``loops.Stop`` ends a loop whose cancel was lost, without swallowing a cancel of its owner."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from collabry.loops import Stop


async def losing_cancels(stop: Stop, inside: asyncio.Event) -> None:
    """A loop whose every step loses the cancel it gets, as a Redis write under Python 3.11's
    ``wait_for`` sometimes does; ``inside`` is set while it is in such a step."""
    while await stop.sleep(0.001):
        inside.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.01)
        inside.clear()


async def test_a_loop_that_loses_its_cancel_still_ends_on_stop() -> None:
    stop, inside = Stop(), asyncio.Event()
    task = asyncio.create_task(losing_cancels(stop, inside))
    await inside.wait()  # the cancel will land in a step that loses it
    await asyncio.wait_for(stop.stop(task), 2)
    assert task.done()


async def test_a_cancel_alone_does_not_end_such_a_loop() -> None:
    """The hazard itself, so that the test above means something."""
    stop, inside = Stop(), asyncio.Event()
    task = asyncio.create_task(losing_cancels(stop, inside))
    await inside.wait()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=0.2)
    assert done == set()
    await stop.stop(task)


async def test_sleep_returns_at_once_when_the_stop_is_requested() -> None:
    stop = Stop()
    sleeper = asyncio.create_task(stop.sleep(60))
    await asyncio.sleep(0)
    task = asyncio.create_task(asyncio.Event().wait())  # a loop that only a cancel ends
    await asyncio.wait_for(stop.stop(task), 1)
    assert await asyncio.wait_for(sleeper, 1) is False
    assert await stop.sleep(60) is False
    assert stop.requested


async def test_stop_raises_what_the_loop_raised() -> None:
    async def failing() -> None:
        raise RuntimeError("broken")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="broken"):
        await Stop().stop(task)


async def test_a_cancel_of_the_owner_gets_through_while_it_waits_for_the_loop() -> None:
    stop = Stop()
    cleaning, release = asyncio.Event(), asyncio.Event()

    async def slow_to_end() -> None:
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            cleaning.set()
            await release.wait()  # clean-up that takes a while

    loop = asyncio.create_task(slow_to_end())
    await asyncio.sleep(0)
    owner = asyncio.create_task(stop.stop(loop))
    await cleaning.wait()  # the owner is waiting for the loop's clean-up
    owner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await owner
    assert not loop.done()
    release.set()
    await asyncio.wait([loop])
    assert loop.cancelled()
