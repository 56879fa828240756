"""The Socket.IO connections one gateway process holds, and their per-connection event budget."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ...config import Rule


class EventBudget:
    """GCRA for one connection: ``rule.limit`` events per ``rule.period`` seconds, bursts up to the limit.

    A connection lives in exactly one process for its whole life, so its budget is kept in memory:
    no Redis round trip per cursor move, and nothing to clean up when the socket goes away.
    """

    __slots__ = ("_interval", "_tat", "_tolerance")

    def __init__(self, rule: Rule) -> None:
        self._interval = rule.period / rule.limit
        self._tolerance = rule.period - self._interval
        self._tat = 0.0  # theoretical arrival time of the next conforming event

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tat = max(self._tat, now)
        if tat - now > self._tolerance:
            return False
        self._tat = tat + self._interval
        return True


@dataclass
class BoardAccess:
    role: str
    writable: bool
    checked_at: float


@dataclass
class Connection:
    sid: str
    user_id: str
    session_id: str
    name: str
    ip: str
    budget: EventBudget
    boards: dict[str, BoardAccess] = field(default_factory=dict)
    # board id -> the Yjs awareness client ids this socket announced there, with their last clock:
    # cleared for the others when the socket leaves the board or goes away.
    awareness: dict[str, dict[int, int]] = field(default_factory=dict)


class Connections:
    def __init__(self) -> None:
        self.by_sid: dict[str, Connection] = {}

    def add(self, conn: Connection) -> None:
        self.by_sid[conn.sid] = conn

    def get(self, sid: str) -> Connection | None:
        return self.by_sid.get(sid)

    def pop(self, sid: str) -> Connection | None:
        return self.by_sid.pop(sid, None)

    def __len__(self) -> int:
        return len(self.by_sid)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self.by_sid.values()))
