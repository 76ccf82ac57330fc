"""Sleeps and durable waits: parked runs hold nothing; deadlines are persisted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pulseloop import Event, Loop, Step
from pulseloop.errors import WaitTimeout
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.engine.helpers import idle
from tests.helpers import eventually, until_status


class Sleeper(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        await step.sleep("nap", "2 days")
        await step.sleep_until("alarm", datetime.fromtimestamp(event.body["until"], UTC))
        return "awake"


async def test_sleep_and_sleep_until_follow_the_clock(
    make_app: AppFactory, clock: FakeClock
) -> None:
    async with make_app([Sleeper]) as app:
        run = await app.trigger("sleeper", {"until": clock.now() + 3 * 86400})
        await until_status(app, run.id, "waiting")
        assert app.worker is not None and app.worker.active == 0
        parked = await app.get_run(run.id)
        assert parked.wake_at is not None
        assert parked.wake_at.timestamp() == clock.now() + 2 * 86400
        assert parked.step("nap").status == "waiting"
        await clock.advance("2 days")

        async def napped() -> bool:  # parked again, on the alarm (not still on the nap)
            again = await app.get_run(run.id)
            return again.status == "waiting" and bool(again.step("nap").status == "completed")

        await eventually(napped, "the nap ending and the run parking on the alarm")
        await clock.advance("1 day")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == "awake"


class WaitsForEvent(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        await step.do("ask", lambda: "asked")
        try:
            reply = await step.wait_for_event("reply", type="patient-reply", timeout="1 hour")
        except WaitTimeout:
            reply = None
        return {"reply": reply}


async def test_event_sent_before_the_wait_is_not_missed(make_app: AppFactory) -> None:
    async with make_app([WaitsForEvent], worker=False) as client:
        run = await client.trigger("waits-for-event")
        await client.send_event(run.id, "patient-reply", {"ok": True})
    async with make_app([WaitsForEvent]) as app:
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == {"reply": {"ok": True}}


async def test_event_wakes_a_waiting_run(make_app: AppFactory) -> None:
    async with make_app([WaitsForEvent]) as app:
        run = await app.trigger("waits-for-event")
        await until_status(app, run.id, "waiting")
        await app.send_event(run.id, "patient-reply", [1, 2])
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == {"reply": [1, 2]}


async def test_wait_timeout_is_catchable_and_replay_does_not_extend_it(
    make_app: AppFactory, clock: FakeClock
) -> None:
    async with make_app([WaitsForEvent]) as app:
        run = await app.trigger("waits-for-event")
        await until_status(app, run.id, "waiting")
        first_deadline = (await app.get_run(run.id)).step("reply").deadline
    # a replay (new app, later time) must keep the deadline fixed when first reached
    await clock.advance("30 minutes")
    async with make_app([WaitsForEvent]) as app:
        await app.send_event(run.id, "unrelated", None)  # forces a replay now
        await idle(app)
        assert (await app.get_run(run.id)).status == "waiting"
        assert (await app.get_run(run.id)).step("reply").deadline == first_deadline
        await clock.advance("30 minutes")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == {"reply": None}
    assert done.step("reply").status == "failed"
    assert done.step("reply").error["type"] == "WaitTimeout"
