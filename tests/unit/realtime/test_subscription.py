"""What a relay takes from the events handed to it: only a run that starts right after the relay's
last event; anything else (a gap, events it has already written, more than it may hold) is left to
a read of the stream."""

from __future__ import annotations

from collabry.cache.streams import StreamEvent, parse_published
from collabry.realtime.stream_waker import Subscription


def deliver(sub: Subscription, first: int, last: int) -> None:
    for n in range(first, last + 1):
        sub.deliver(StreamEvent(n, "token", f'{{"text": "{n}"}}'))


def test_events_right_after_the_relays_last_are_taken_once() -> None:
    sub = Subscription("s")
    deliver(sub, 4, 6)
    assert [e.id for e in sub.take(3)] == [4, 5, 6]
    assert sub.take(3) == []  # taken: the next delivery brings new ones, or the relay reads


def test_only_the_events_after_the_relays_last_are_taken() -> None:
    sub = Subscription("s")
    deliver(sub, 2, 9)  # the relay's own first read already wrote up to 5
    assert [e.id for e in sub.take(5)] == [6, 7, 8, 9]


def test_a_gap_or_events_already_written_are_not_taken() -> None:
    sub = Subscription("s")
    deliver(sub, 8, 9)  # 6 and 7 are missing: the relay must read them from Redis
    assert sub.take(5) == []
    deliver(sub, 2, 4)
    assert sub.take(5) == []  # all written already


def test_a_break_in_the_delivered_ids_keeps_only_the_newest_run() -> None:
    sub = Subscription("s")
    deliver(sub, 6, 7)
    deliver(sub, 9, 10)  # 8 was lost on the way: what came before it cannot be joined to 9
    assert sub.take(5) == []
    deliver(sub, 3, 4)  # a stream started again under the same id would look like this
    deliver(sub, 5, 5)
    assert [e.id for e in sub.take(2)] == [3, 4, 5]


def test_a_relay_busy_writing_holds_at_most_its_limit_and_then_reads() -> None:
    sub = Subscription("s", limit=4)
    deliver(sub, 1, 4)
    assert [e.id for e in sub.take(0)] == [1, 2, 3, 4]
    deliver(sub, 5, 10)  # more than 4 while the relay was writing: the older ones are dropped
    assert sub.take(4) == []  # 5 is gone: the relay reads from 5 on


async def test_a_wake_without_events_keeps_what_was_delivered() -> None:
    sub = Subscription("s")
    deliver(sub, 1, 1)
    sub.wake()  # a drain, or a confirmation after a reconnect
    assert await sub.wait(0.01)
    assert not await sub.wait(0.01)  # one wake, consumed
    assert [e.id for e in sub.take(0)] == [1]


def test_published_events_keep_spaces_in_their_data() -> None:
    event = parse_published(b'12 token {"text": "a b c"}')
    assert event == StreamEvent(12, "token", '{"text": "a b c"}')
