"""Schedules and slots: pure UTC arithmetic, the same on every host."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from collabry.config import ConfigError, load_settings
from collabry.worker.job import CatchUp, Job
from collabry.worker.registry import resolve
from collabry.worker.schedule import ScheduleError, parse_schedule, slot_name, slots_between

AT = datetime(2030, 3, 10, 3, 17, 42, tzinfo=UTC)


def latest(spec: str, at: datetime = AT) -> str:
    slot = parse_schedule(spec).latest(at)
    assert slot is not None
    return slot_name(slot)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("* * * * *", "2030-03-10T03:17:00Z"),
        ("17 3 * * *", "2030-03-10T03:17:00Z"),
        ("18 3 * * *", "2030-03-09T03:18:00Z"),
        ("*/15 * * * *", "2030-03-10T03:15:00Z"),
        ("0,30 1-2 * * *", "2030-03-10T02:30:00Z"),
        ("@hourly", "2030-03-10T03:00:00Z"),
        ("@daily", "2030-03-10T00:00:00Z"),
        ("@weekly", "2030-03-10T00:00:00Z"),  # 2030-03-10 is a Sunday
        ("0 9 * * mon-fri", "2030-03-08T09:00:00Z"),
        ("0 0 1 jan *", "2030-01-01T00:00:00Z"),
        ("0 0 29 2 *", "2028-02-29T00:00:00Z"),
        ("every 5m", "2030-03-10T03:15:00Z"),
        ("every 90s", "2030-03-10T03:16:30Z"),
        ("every 1d", "2030-03-10T00:00:00Z"),
    ],
)
def test_latest_slot(spec: str, expected: str) -> None:
    assert latest(spec) == expected


def test_day_of_month_or_weekday_when_both_are_restricted() -> None:
    # cron's rule: the 1st of the month OR a Monday
    assert latest("0 0 1 * 1", datetime(2030, 3, 5, tzinfo=UTC)) == "2030-03-04T00:00:00Z"  # a Monday
    assert latest("0 0 1 * 1", datetime(2030, 3, 3, tzinfo=UTC)) == "2030-03-01T00:00:00Z"


def test_slots_are_utc_whatever_the_offset_of_the_input() -> None:
    same_instant = AT.astimezone(timezone(timedelta(hours=-5)))
    assert latest("0 3 * * *", same_instant) == "2030-03-10T03:00:00Z"
    assert latest("0 0 * * *", datetime(2030, 3, 10, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))) == (
        "2030-03-10T00:00:00Z"
    )


def test_slots_between_is_half_open_and_ordered() -> None:
    schedule = parse_schedule("*/15 * * * *")
    slots = slots_between(schedule, datetime(2030, 3, 10, 2, 30, tzinfo=UTC), AT, limit=100)
    assert [slot_name(s) for s in slots] == ["2030-03-10T02:45:00Z", "2030-03-10T03:00:00Z", "2030-03-10T03:15:00Z"]
    newest_two = slots_between(schedule, datetime(2030, 3, 10, 0, 0, tzinfo=UTC), AT, limit=2)
    assert [slot_name(s) for s in newest_two] == ["2030-03-10T03:00:00Z", "2030-03-10T03:15:00Z"]


@pytest.mark.parametrize(
    "spec",
    ["", "* * * *", "61 * * * *", "* 24 * * *", "*/0 * * * *", "5-1 * * * *", "0 0 30 2 *", "every 0m", "x y z a b"],
)
def test_bad_schedules_are_refused(spec: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(spec)


async def _noop(ctx: object) -> None:
    return None


JOBS = [Job("alpha", _noop, "* * * * *"), Job("beta", _noop, "0 3 * * *", catch_up=CatchUp.ALL, host_scoped=True)]


def test_overrides_from_the_environment() -> None:
    settings = load_settings({"COLLABRY_WORKER_SCHEDULES": "alpha=every 5m; beta=off"})
    alpha, beta = resolve(settings, JOBS)
    assert alpha.schedule is not None and alpha.schedule.spec == "every 5m"
    assert beta.schedule is None
    assert beta.ledger_name.startswith("beta@")  # host-scoped jobs keep one ledger per host


@pytest.mark.parametrize(
    ("value", "message"),
    [("gamma=* * * * *", "unknown job 'gamma'"), ("alpha=61 * * * *", "alpha: minute"), ("alpha", "JOB=SCHEDULE")],
)
def test_bad_overrides_are_configuration_errors(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(load_settings({"COLLABRY_WORKER_SCHEDULES": value}), JOBS)
    assert caught.value.setting == "COLLABRY_WORKER_SCHEDULES"
    assert message in str(caught.value)
