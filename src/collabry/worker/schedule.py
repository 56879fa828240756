"""Job schedules and their time slots, always in UTC.

A schedule is written either cron-like (five fields ``minute hour day-of-month month day-of-week``,
with ``*``, ``a-b``, ``*/n``, ``a-b/n`` and lists, or one of ``@hourly @daily @weekly @monthly
@yearly``) or as an interval (``every 90s``, ``every 5m``, ``every 2h``, ``every 1d``). A slot is a
point in time at which the schedule fires; interval slots are multiples of the interval counted from
the Unix epoch, so every host computes the same slots without talking to the others.

Slots are named ``YYYY-MM-DDTHH:MM:SSZ``; the ledger id of a run is ``<job>:<slot>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Enough to look back across any real schedule (a yearly one needs ~400 steps), small enough that
# an impossible one (February 30) fails fast.
_MAX_STEPS = 200_000

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL = re.compile(r"^(?:@?every)\s+(\d+)\s*([smhd])$")
_MONTH_NAMES = {name: i for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_DAY_NAMES = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}


class ScheduleError(ValueError):
    """A schedule that cannot be parsed or never fires."""


class Schedule(Protocol):
    @property
    def spec(self) -> str: ...

    def latest(self, at: datetime) -> datetime | None:
        """The last slot at or before ``at``."""
        ...


def slot_name(slot: datetime) -> str:
    return slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_slot(name: str) -> datetime:
    return datetime.strptime(name, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def slots_between(schedule: Schedule, after: datetime, until: datetime, *, limit: int) -> list[datetime]:
    """Slots in ``(after, until]``, oldest first, at most the newest ``limit`` of them."""
    found: list[datetime] = []
    slot = schedule.latest(until)
    while slot is not None and slot > after and len(found) < limit:
        found.append(slot)
        slot = schedule.latest(slot - timedelta(seconds=1))
    found.reverse()
    return found


@dataclass(frozen=True)
class Interval:
    spec: str
    seconds: int

    def latest(self, at: datetime) -> datetime | None:
        elapsed = int((at - _EPOCH).total_seconds())
        return _EPOCH + timedelta(seconds=elapsed - elapsed % self.seconds)


def _field(text: str, low: int, high: int, names: dict[str, int], what: str) -> frozenset[int] | None:
    """The values a cron field allows; None for ``*`` (any)."""
    if text == "*":
        return None
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleError(f"{what}: bad step in {text!r}")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names, what), _value(b, names, what)
        else:
            start = _value(part, names, what)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ScheduleError(f"{what}: {text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, names: dict[str, int], what: str) -> int:
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not text.isdigit():
        raise ScheduleError(f"{what}: {text!r} is not a number")
    return int(text)


@dataclass(frozen=True)
class Cron:
    spec: str
    minutes: frozenset[int] | None
    hours: frozenset[int] | None
    days: frozenset[int] | None
    months: frozenset[int] | None
    weekdays: frozenset[int] | None  # 0 = Sunday

    @classmethod
    def parse(cls, spec: str) -> Cron:
        fields = _MACROS.get(spec.strip().lower(), spec).split()
        if len(fields) != 5:
            raise ScheduleError(f"expected 5 cron fields (minute hour day month weekday), got {spec!r}")
        weekdays = _field(fields[4], 0, 7, _DAY_NAMES, "day of week")
        if weekdays is not None and 7 in weekdays:
            weekdays = (weekdays - {7}) | {0}
        return cls(
            spec,
            _field(fields[0], 0, 59, {}, "minute"),
            _field(fields[1], 0, 23, {}, "hour"),
            _field(fields[2], 1, 31, {}, "day of month"),
            _field(fields[3], 1, 12, _MONTH_NAMES, "month"),
            weekdays,
        )

    def _day_matches(self, t: datetime) -> bool:
        weekday = (t.weekday() + 1) % 7  # Python: Monday = 0; cron: Sunday = 0
        day_ok = self.days is None or t.day in self.days
        weekday_ok = self.weekdays is None or weekday in self.weekdays
        if self.days is not None and self.weekdays is not None:
            return day_ok or weekday_ok  # cron's rule when both are restricted
        return day_ok and weekday_ok

    def latest(self, at: datetime) -> datetime | None:
        # Walk backwards, skipping a whole month, day or hour whenever that field does not match.
        t = at.astimezone(UTC).replace(second=0, microsecond=0)
        for _ in range(_MAX_STEPS):
            if t.year < 1971:
                return None
            if self.months is not None and t.month not in self.months:
                t = t.replace(day=1, hour=0, minute=0) - MINUTE
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0) - MINUTE
            elif self.hours is not None and t.hour not in self.hours:
                t = t.replace(minute=0) - MINUTE
            elif self.minutes is not None and t.minute not in self.minutes:
                t -= MINUTE
            else:
                return t
        return None


def parse_schedule(spec: str) -> Schedule:
    text = " ".join(spec.strip().split())
    match = _INTERVAL.match(text.lower())
    schedule: Schedule
    if match:
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        if seconds < 1:
            raise ScheduleError(f"the interval must be positive: {spec!r}")
        schedule = Interval(text, seconds)
    else:
        schedule = Cron.parse(text)
    if schedule.latest(datetime(2100, 1, 1, tzinfo=UTC)) is None:
        raise ScheduleError(f"{spec!r} never fires")
    return schedule


def parse_overrides(text: str) -> Iterable[tuple[str, str]]:
    """``COLLABRY_WORKER_SCHEDULES``: ``job=spec`` entries separated by ``;``."""
    for entry in text.split(";"):
        if not entry.strip():
            continue
        name, sep, spec = entry.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise ScheduleError(f"expected JOB=SCHEDULE, got {entry.strip()!r}")
        yield name.strip(), spec.strip()
