"""What a relay takes from the events its stream waker read: only a run that starts right after
the relay's last event; anything else (a gap, events it has already written) is left to a read."""

from __future__ import annotations

from collabry.cache.streams import StreamEvent
from collabry.realtime.stream_waker import Subscription


def events(first: int, last: int) -> list[StreamEvent]:
    return [StreamEvent(n, "token", f'{{"text": "{n}"}}') for n in range(first, last + 1)]


def test_events_right_after_the_relays_last_are_taken_once() -> None:
    sub = Subscription("s", after=3)
    sub.wake(events(4, 6))
    assert [e.id for e in sub.take(3)] == [4, 5, 6]
    assert sub.take(3) == []  # taken: the next wake brings new ones, or the relay reads


def test_only_the_events_after_the_relays_last_are_taken() -> None:
    sub = Subscription("s", after=0)
    sub.wake(events(2, 9))  # the relay's own first read already wrote up to 5
    assert [e.id for e in sub.take(5)] == [6, 7, 8, 9]


def test_a_gap_or_events_already_written_are_not_taken() -> None:
    sub = Subscription("s", after=0)
    sub.wake(events(8, 9))  # 6 and 7 are missing: the relay must read them from Redis
    assert sub.take(5) == []
    sub.wake(events(2, 4))
    assert sub.take(5) == []  # all written already
    sub.wake([*events(6, 7), *events(9, 9)])  # not consecutive: not trusted
    assert sub.take(5) == []


def test_a_newer_delivery_replaces_one_not_taken_and_a_bare_wake_keeps_it() -> None:
    sub = Subscription("s", after=0)
    sub.wake(events(1, 2))
    sub.wake(events(3, 4))
    assert sub.take(0) == []  # 1 and 2 were replaced: the relay reads from 1 itself
    sub.wake(events(5, 5))
    sub.wake()  # a drain or a failed shard read wakes without events
    assert [e.id for e in sub.take(4)] == [5]
