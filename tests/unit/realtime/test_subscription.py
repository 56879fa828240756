"""What a relay takes from the events handed to it: only a run that starts right after the relay's
last event. A gap, more than it may hold, or a wake without events (``None``) is left to a read of
the stream; events it has already written give nothing to write."""

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
    assert sub.take(6) == []  # taken: nothing new, and nothing to read either


def test_only_the_events_after_the_relays_last_are_taken() -> None:
    sub = Subscription("s")
    deliver(sub, 2, 9)  # the relay's own first read already wrote up to 5
    assert [e.id for e in sub.take(5)] == [6, 7, 8, 9]


def test_a_gap_or_events_already_written_are_not_taken() -> None:
    sub = Subscription("s")
    deliver(sub, 8, 9)  # 6 and 7 are missing: the relay must read them from Redis
    assert sub.take(5) is None
    deliver(sub, 2, 4)
    assert sub.take(5) == []  # all written already


def test_a_break_in_the_delivered_ids_keeps_only_the_newest_run() -> None:
    sub = Subscription("s")
    deliver(sub, 6, 7)
    deliver(sub, 9, 10)  # 8 was lost on the way: what came before it cannot be joined to 9
    assert sub.take(5) is None
    deliver(sub, 3, 4)  # a stream started again under the same id would look like this
    deliver(sub, 5, 5)
    assert [e.id for e in sub.take(2)] == [3, 4, 5]


def test_a_relay_busy_writing_holds_at_most_its_limit_and_then_reads() -> None:
    sub = Subscription("s", limit=4)
    deliver(sub, 1, 4)
    assert [e.id for e in sub.take(0)] == [1, 2, 3, 4]
    deliver(sub, 5, 10)  # more than 4 while the relay was writing: the older ones are dropped
    assert sub.take(4) is None  # 5 is gone: the relay reads from 5 on


async def test_a_wake_without_events_makes_the_relay_read() -> None:
    sub = Subscription("s")
    deliver(sub, 1, 1)
    sub.wake()  # a confirmation after a reconnect: something may have been missed before it
    assert await sub.wait(0.01)
    assert not await sub.wait(0.01)  # one wake, consumed
    assert sub.take(0) is None  # the stream has what was delivered, and what may be missing
    assert sub.take(0) == []  # the read answered it


async def test_taking_the_events_consumes_their_wake() -> None:
    """Events handed over while the relay was writing are taken at its next look; the wake they
    left must not send it to read the stream for nothing afterwards."""
    sub = Subscription("s")
    deliver(sub, 1, 2)
    assert [e.id for e in sub.take(0)] == [1, 2]
    assert not await sub.wait(0.01)


async def test_a_subscription_confirmed_before_its_stream_began_needs_no_read() -> None:
    sub = Subscription("s")
    sub.wake()  # the confirmation
    sub.caught_up()  # ...of a stream that had no events yet
    assert not await sub.wait(0.01)
    assert sub.take(0) == []
    deliver(sub, 1, 2)
    assert [e.id for e in sub.take(0)] == [1, 2]


def test_published_events_keep_spaces_in_their_data() -> None:
    event = parse_published(b'12 token {"text": "a b c"}')
    assert event == StreamEvent(12, "token", '{"text": "a b c"}')
