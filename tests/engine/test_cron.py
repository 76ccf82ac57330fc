"""Cron ticks in a time zone (cronsim's semantics, pinned), validation, missed ticks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pulseloop import Cron
from pulseloop.engine.cron import (
    MISFIRE_GRACE_S,
    last_tick,
    next_tick,
    plan,
    tick_run_id,
    upcoming,
)
from pulseloop.errors import InvalidSchedule
from pulseloop.store.base import ScheduleRecord

NY = ZoneInfo("America/New_York")


def _ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=NY).timestamp()


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


def _ticks(cron: str, after: float, n: int) -> list[str]:
    out, at = [], after
    for _ in range(n):
        tick = next_tick(cron, "America/New_York", at)
        assert tick is not None
        out.append(_utc(tick))
        at = tick
    return out


def test_spring_forward_a_skipped_time_fires_once_right_after_the_gap() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that day
    assert _ticks("30 2 * * *", _ny(2026, 3, 7, 12), 3) == [
        "2026-03-08 07:00",  # 03:00 EDT, the first instant after the gap
        "2026-03-09 06:30",  # 02:30 EDT
        "2026-03-10 06:30",
    ]


def test_fall_back_a_fixed_hour_fires_once_a_wildcard_hour_twice() -> None:
    # 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:00-02:00 happens twice
    assert _ticks("30 1 * * *", _ny(2026, 10, 31, 12), 2) == [
        "2026-11-01 05:30",  # 01:30 EDT only, not 01:30 EST as well
        "2026-11-02 06:30",  # 01:30 EST
    ]
    assert _ticks("30 2 * * *", _ny(2026, 10, 31, 12), 2) == [
        "2026-11-01 07:30",  # 02:30 EST: 25 hours after the day before's 02:30 EDT
        "2026-11-02 07:30",
    ]
    assert _ticks("0 * * * *", _ny(2026, 11, 1, 0, 30), 3) == [
        "2026-11-01 05:00",  # 01:00 EDT
        "2026-11-01 06:00",  # 01:00 EST, an hour later
        "2026-11-01 07:00",  # 02:00 EST
    ]


def test_next_tick_honours_start_and_end() -> None:
    start = _ny(2026, 12, 10, 8)  # a tick itself: included
    assert next_tick("0 8 * * *", "America/New_York", _ny(2026, 12, 1), start) == start
    # a start half a second after a tick excludes that tick
    later = next_tick("0 8 * * *", "America/New_York", _ny(2026, 12, 1), start + 0.5)
    assert later == start + 86400
    end = _ny(2026, 12, 2, 7, 59)
    assert next_tick("0 8 * * *", "America/New_York", _ny(2026, 12, 1, 9), None, end) is None


def test_last_tick_counts_a_tick_at_the_instant() -> None:
    at = _ny(2026, 12, 1, 8)
    assert last_tick("0 8 * * *", "America/New_York", at) == at
    assert last_tick("0 8 * * *", "America/New_York", at - 1) == at - 86400


def _record(missed: str, next_fire_at: float, end_at: float | None = None) -> ScheduleRecord:
    return ScheduleRecord(
        org="o", id="daily", loop="l", cron="0 8 * * *", tz="America/New_York", body="null",
        missed=missed, start_at=None, end_at=end_at, paused=False, next_fire_at=next_fire_at,
        last_fire_at=None, last_run_id=None, source="api", created_at=0.0, updated_at=0.0,
    )  # fmt: skip


def test_plan_fires_the_latest_due_tick_and_moves_past_now() -> None:
    due = _ny(2026, 12, 1, 8)
    on_time = plan(_record("skip", due), due + 1)
    assert on_time.tick_at == due and on_time.run_id == tick_run_id("daily", due)
    assert on_time.next_fire_at == due + 86400
    now = due + 3 * 86400 + 3600  # down for three days: ticks on the 1st..4th missed
    skipped = plan(_record("skip", due), now)
    assert (skipped.tick_at, skipped.run_id) == (None, None)
    assert skipped.next_fire_at == due + 4 * 86400
    caught_up = plan(_record("catch_up_last", due), now)
    assert caught_up.tick_at == due + 3 * 86400  # only the last one
    assert caught_up.next_fire_at == due + 4 * 86400
    late = plan(_record("skip", due), due + MISFIRE_GRACE_S)
    assert late.tick_at == due  # a worker a little behind still fires


def test_plan_never_fires_after_the_end() -> None:
    due = _ny(2026, 12, 1, 8)
    firing = plan(_record("catch_up_last", due, end_at=due + 86400 + 1), due + 5 * 86400)
    assert firing.tick_at == due + 86400
    assert firing.next_fire_at is None


def test_tick_run_ids_are_fixed_by_schedule_and_instant() -> None:
    assert tick_run_id("p42-morning", _ny(2026, 3, 8, 3)) == "p42-morning:20260308T070000Z"


def test_upcoming_lists_the_next_fire_times() -> None:
    due = _ny(2026, 12, 1, 8)
    assert upcoming(_record("skip", due), 3) == [due, due + 86400, due + 2 * 86400]
    paused = _record("skip", due)
    assert upcoming(dataclasses.replace(paused, next_fire_at=None), 3) == []


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"cron": "61 * * * *"}, "'61 * * * *'"),
        ({"cron": "every morning"}, "'every morning'"),
        ({"cron": "0 8 * * *", "tz": "Mars/Olympus_Mons"}, "'Mars/Olympus_Mons'"),
        ({"cron": "0 8 * * *", "missed": "all"}, "'all'"),
        ({"cron": "0 8 * * *", "id": "a/b"}, "'a/b'"),
        ({"cron": "0 8 * * *", "start": "2026-12-02", "end": "2026-12-01"}, "2026-12-01"),
        ({"cron": "0 8 * * *", "end": "next tuesday"}, "'next tuesday'"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_value(options: dict[str, str], named: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        Cron(**{"id": "x", **options})
    assert named in str(caught.value)
