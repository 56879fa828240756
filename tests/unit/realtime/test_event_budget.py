"""The per-connection event budget (GCRA)."""

from __future__ import annotations

from collabry.config import Rule
from collabry.gateway.realtime.connections import EventBudget


def test_burst_then_steady_rate():
    budget = EventBudget(Rule(10, 1.0))
    assert [budget.take(100.0) for _ in range(12)] == [True] * 10 + [False] * 2
    assert budget.take(100.05) is False  # refill is one event per 0.1 s
    assert budget.take(100.1) is True
    assert budget.take(100.1) is False
    # a quiet second restores the whole burst
    assert sum(budget.take(102.0) for _ in range(12)) == 10
