"""Schedules with real workers and a fake clock: ticks across daylight saving, an outage
under each missed-tick policy, two workers racing one tick, pause/resume/delete, end
dates, and schedules declared on a loop class."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pulseloop import App, Cron, Event, Loop, Run, Step
from pulseloop.errors import InvalidSchedule, LoopNotFound, ScheduleNotFound
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.engine.helpers import idle
from tests.helpers import eventually

NY = ZoneInfo("America/New_York")
DAY = 86400.0


class Checkup(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("check", lambda: event.body)


class Morning(Loop):
    name = "morning"
    schedules = (Cron("0 8 * * *", id="morning", body={"ward": "post-op"}),)

    async def run(self, event: Event, step: Step) -> Any:
        return event.body


class MorningWithoutSchedule(Loop):
    name = "morning"

    async def run(self, event: Event, step: Step) -> Any:
        return None


async def _finished(app: App, run_id: str) -> Run:
    async def exists() -> bool:
        return any(r.id == run_id for r in await app.list_runs(limit=200))

    await eventually(exists, f"the tick's run {run_id}")
    return await app.wait_for_run(run_id, timeout="20 seconds")


async def _run_ids(app: App) -> list[str]:
    await idle(app)
    return sorted(r.id for r in await app.list_runs(limit=200))


def _utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def test_a_schedule_across_spring_forward_and_fall_back(make_app: AppFactory) -> None:
    clock = FakeClock(start=datetime(2026, 3, 7, 12, tzinfo=NY).timestamp())
    async with make_app([Checkup], clock=clock) as app:
        created = await app.schedules.create(
            "checkup", cron="30 2 * * *", tz="America/New_York", body={"patientId": "p1"},
            id="p1-daily",
        )  # fmt: skip
        # 02:30 does not exist on 8 March: the tick fires at 03:00 EDT, right after the gap
        assert created.next_fire == _utc(2026, 3, 8, 7, 0)
        await clock.advance(created.next_fire.timestamp() - clock.now())
        run = await _finished(app, "p1-daily:20260308T070000Z")
        assert run.output == {"patientId": "p1"}
        following = await app.schedules.get("p1-daily")
        assert following.next_fire == _utc(2026, 3, 9, 6, 30)  # 02:30 EDT
        assert following.last_run_id == run.id

        # 01:30 happens twice on 1 November: a fixed-hour tick fires on the first only
        await app.schedules.delete("p1-daily")
        await clock.advance(datetime(2026, 10, 31, 12, tzinfo=NY).timestamp() - clock.now())
        await app.schedules.create(
            "checkup", cron="30 1 * * *", tz="America/New_York", id="p1-night"
        )
        await clock.advance(_utc(2026, 11, 1, 5, 30).timestamp() - clock.now())
        await _finished(app, "p1-night:20261101T053000Z")  # 01:30 EDT
        await clock.advance("1 hour")  # 01:30 EST
        assert "p1-night:20261101T063000Z" not in await _run_ids(app)
        night = await app.schedules.get("p1-night")
        assert night.next_fire == _utc(2026, 11, 2, 6, 30)


@pytest.mark.parametrize("missed", ["skip", "catch_up_last"])
async def test_ticks_missed_while_everything_was_down(
    make_app: AppFactory, clock: FakeClock, missed: str
) -> None:
    # the clock starts at 2027-01-15 08:00 UTC: the first tick is the 16th
    async with make_app([Checkup]) as app:
        await app.schedules.create("checkup", cron="0 8 * * *", id="daily", missed=missed)
    await clock.advance(3 * DAY + 7200)  # no worker from the 15th to the 18th, 10:00
    async with make_app([Checkup]) as app:
        ids = await _run_ids(app)
        if missed == "skip":
            assert ids == []
        else:  # the latest missed tick only, not one run per missed day
            assert ids == ["daily:20270118T080000Z"]
        schedule = await app.schedules.get("daily", upcoming=2)
        assert schedule.next_fire == _utc(2027, 1, 19, 8)
        assert schedule.upcoming == (_utc(2027, 1, 19, 8), _utc(2027, 1, 20, 8))


async def test_two_workers_racing_one_tick_start_one_run(
    make_app: AppFactory, clock: FakeClock
) -> None:
    async with make_app([Morning]) as first, make_app([Morning]) as second:
        assert [s.id for s in await first.schedules.list()] == ["morning"]
        await clock.advance("1 day")  # both timer loops wake for the same tick
        await _finished(first, "morning:20270116T080000Z")
        assert await _run_ids(first) == await _run_ids(second) == ["morning:20270116T080000Z"]


async def test_pause_resume_and_delete(make_app: AppFactory, clock: FakeClock) -> None:
    async with make_app([Checkup]) as app:
        await app.schedules.create("checkup", cron="0 8 * * *", id="daily")
        paused = await app.schedules.pause("daily")
        assert paused.paused and paused.next_fire is None
        await clock.advance("1 day")
        assert await _run_ids(app) == []  # the 16th passed while paused
        resumed = await app.schedules.resume("daily")
        assert not resumed.paused and resumed.next_fire == _utc(2027, 1, 17, 8)
        await clock.advance("1 day")
        await _finished(app, "daily:20270117T080000Z")
        await app.schedules.delete("daily")
        with pytest.raises(ScheduleNotFound, match="'daily'"):
            await app.schedules.get("daily")
        with pytest.raises(ScheduleNotFound):
            await app.schedules.delete("daily")
        await clock.advance("1 day")
        assert await _run_ids(app) == ["daily:20270117T080000Z"]


async def test_no_tick_after_the_end_date(make_app: AppFactory, clock: FakeClock) -> None:
    async with make_app([Checkup]) as app:
        await app.schedules.create("checkup", cron="0 8 * * *", id="week", end=_utc(2027, 1, 17, 9))
        for _ in range(3):
            await clock.advance("1 day")
            await idle(app)
        assert await _run_ids(app) == ["week:20270116T080000Z", "week:20270117T080000Z"]
        assert (await app.schedules.get("week")).next_fire is None


async def test_declared_schedules_follow_the_code(make_app: AppFactory) -> None:
    async with make_app([Morning]) as app:
        (declared,) = await app.schedules.list()
        assert (declared.source, declared.body) == ("code", {"ward": "post-op"})
        await app.schedules.pause("morning")
    async with make_app([Morning]) as app:  # a restart keeps the operator's pause
        assert (await app.schedules.get("morning")).paused
    async with make_app([MorningWithoutSchedule]) as app:  # the code dropped it
        assert await app.schedules.list() == []


async def test_create_refuses_what_it_cannot_keep(make_app: AppFactory) -> None:
    async with make_app([Checkup]) as app:
        with pytest.raises(InvalidSchedule, match="'0 25 \\* \\* \\*'"):
            await app.schedules.create("checkup", cron="0 25 * * *")
        with pytest.raises(InvalidSchedule, match="'Europe/Atlantis'"):
            await app.schedules.create("checkup", cron="0 8 * * *", tz="Europe/Atlantis")
        with pytest.raises(LoopNotFound, match="'nope'"):
            await app.schedules.create("nope", cron="0 8 * * *")
        assert await app.schedules.list() == []
