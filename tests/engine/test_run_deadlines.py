"""Whole-run deadlines: a run not finished by its deadline fails with RunTimeout, while
parked, paused or running; a run that finished first is untouched."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pulseloop import Cron, Event, Loop, Step
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.engine.helpers import idle
from tests.helpers import until_status


class Parks(Loop):
    run_timeout = "2 hours"

    async def run(self, event: Event, step: Step) -> Any:
        await step.do("ask", lambda: "asked")
        return await step.wait_for_event("reply", type="reply", timeout="7 days")


class Quick(Loop):
    run_timeout = "1 hour"

    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("work", lambda: "done")


SIGNS: dict[str, asyncio.Event] = {}
"""Set by Stuck's step (fresh per test: an Event belongs to one event loop)."""


class Stuck(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        async def forever() -> None:
            SIGNS["started"].set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                SIGNS["cancelled"].set()
                raise

        return await step.do("forever", forever, timeout="30 days")


class Daily(Loop):
    run_timeout = "30 minutes"
    schedules = (Cron("0 8 * * *", id="daily"),)

    async def run(self, event: Event, step: Step) -> Any:
        return await step.wait_for_event("reply", type="reply", timeout="1 day")


async def test_a_parked_run_fails_at_its_deadline(make_app: AppFactory, clock: FakeClock) -> None:
    async with make_app([Parks]) as app:
        run = await app.trigger("parks")
        assert run.deadline is not None
        assert run.deadline.timestamp() == clock.now() + 7200
        await until_status(app, run.id, "waiting")
        await clock.advance("119 minutes")
        await idle(app)
        assert (await app.get_run(run.id)).status == "waiting"
        await clock.advance("1 minute")
        failed = await app.wait_for_run(run.id, timeout="20 seconds")
    assert failed.status == "failed"
    assert failed.error is not None and failed.error["code"] == "run_timeout"
    assert failed.error["type"] == "RunTimeout"
    assert failed.step("ask").status == "completed"
    assert all(s.status != "waiting" for s in failed.steps)  # its wait went with it


async def test_the_trigger_sets_or_overrides_the_deadline(
    make_app: AppFactory, clock: FakeClock
) -> None:
    async with make_app([Parks]) as app:
        sooner = await app.trigger("parks", run_timeout="10 minutes")
        assert sooner.deadline is not None
        assert sooner.deadline.timestamp() == clock.now() + 600
        paused = await app.trigger("parks", run_timeout="10 minutes")
        await until_status(app, paused.id, "waiting")
        await app.pause(paused.id)
        await clock.advance("10 minutes")
        assert (await app.wait_for_run(sooner.id, timeout="20 seconds")).status == "failed"
        assert (await app.wait_for_run(paused.id, timeout="20 seconds")).status == "failed"


async def test_a_finished_run_is_untouched_by_its_deadline(
    make_app: AppFactory, clock: FakeClock
) -> None:
    async with make_app([Quick]) as app:
        run = await app.trigger("quick")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
        await clock.advance("2 hours")
        await idle(app)
        again = await app.get_run(run.id)
    assert done.status == again.status == "completed" and again.output == "done"


async def test_a_running_run_is_stopped_at_its_deadline(
    make_app: AppFactory, clock: FakeClock
) -> None:
    SIGNS.update(started=asyncio.Event(), cancelled=asyncio.Event())
    async with make_app([Stuck]) as app:
        run = await app.trigger("stuck", run_timeout="5 minutes")
        await asyncio.wait_for(SIGNS["started"].wait(), 20)
        await clock.advance("5 minutes")
        failed = await app.wait_for_run(run.id, timeout="20 seconds")
        await asyncio.wait_for(SIGNS["cancelled"].wait(), 20)  # the step was stopped, not left
        assert failed.status == "failed" and failed.error is not None
        assert failed.error["code"] == "run_timeout"
        await idle(app)
        assert app.worker is not None and app.worker.active == 0


@pytest.mark.parametrize("late_s", [0, 45])
async def test_a_schedules_run_counts_its_deadline_from_the_tick(
    make_app: AppFactory, clock: FakeClock, late_s: int
) -> None:
    async with make_app([Daily]) as app:
        await clock.advance(86400 + late_s)  # the tick on the 16th, fired late_s late (in grace)
        await idle(app)
        run = await app.get_run("daily:20270116T080000Z")
        assert run.status == "waiting"
        assert run.deadline is not None
        assert run.deadline.timestamp() == clock.now() - late_s + 1800
