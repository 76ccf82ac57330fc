"""Operator actions: cancel, pause/resume, retry, restart-from-step, idempotent trigger."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pulseloop import Event, Loop, Step
from pulseloop.errors import InvalidRunState, LoopNotFound, RunNotFound
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.engine.helpers import idle
from tests.helpers import eventually, until_status

calls: list[str] = []
gate = asyncio.Event()


class Pipeline(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        async def record(name: str) -> str:
            calls.append(name)
            return name

        async def slow_b() -> str:
            calls.append("b")
            await gate.wait()
            return "b"

        a = await step.do("a", lambda: record("a"))
        b = await step.do("b", slow_b)
        await step.sleep("pause point", "1 hour")
        c = await step.do("c", lambda: record("c"))
        if event.body and event.body.get("fail") and not calls.count("fixed"):
            raise RuntimeError("bug in the loop")
        return [a, b, c]


async def _fresh(open_gate: bool = True) -> None:
    global gate
    calls.clear()
    gate = asyncio.Event()  # one per test: an Event binds to the first loop that awaits it
    if open_gate:
        gate.set()


async def test_idempotent_trigger_returns_the_existing_run(make_app: AppFactory) -> None:
    await _fresh()
    async with make_app([Pipeline]) as app:
        first = await app.trigger("pipeline", {"x": 1}, id="order-7")
        again = await app.trigger("pipeline", {"x": 2}, id="order-7")
        assert again.id == first.id == "order-7"
        assert again.body == {"x": 1}
        assert len(await app.list_runs()) == 1
        with pytest.raises(LoopNotFound, match=r"'nope'.*pipeline"):
            await app.trigger("nope")
        with pytest.raises(RunNotFound, match="'missing'"):
            await app.get_run("missing")


async def test_cancel_a_waiting_run(make_app: AppFactory, clock: FakeClock) -> None:
    await _fresh()
    async with make_app([Pipeline]) as app:
        run = await app.trigger("pipeline")
        await until_status(app, run.id, "waiting")
        cancelled = await app.cancel(run.id)
        assert cancelled.status == "cancelled"
        await clock.advance("2 hours")
        await idle(app)
        assert (await app.get_run(run.id)).status == "cancelled"
        with pytest.raises(InvalidRunState, match="cancelled"):
            await app.cancel(run.id)
    assert "c" not in calls


async def test_cancel_a_running_run_stops_it(make_app: AppFactory) -> None:
    await _fresh(open_gate=False)
    async with make_app([Pipeline]) as app:
        run = await app.trigger("pipeline")
        await eventually(lambda: _true("b" in calls), "step b started")
        await app.cancel(run.id)
        gate.set()
        await idle(app)
        final = await app.get_run(run.id)
    assert final.status == "cancelled"
    assert [s.name for s in final.steps] == ["a"]


async def test_pause_a_running_run_after_its_step_then_resume(
    make_app: AppFactory, clock: FakeClock
) -> None:
    await _fresh(open_gate=False)
    async with make_app([Pipeline]) as app:
        run = await app.trigger("pipeline")
        await eventually(lambda: _true("b" in calls), "step b started")
        await app.pause(run.id)
        gate.set()
        await until_status(app, run.id, "paused")
        await idle(app)
        paused = await app.get_run(run.id)
        assert paused.status == "paused"
        assert [s.name for s in paused.steps] == ["a", "b"]  # the step in hand was kept
        await app.resume(run.id)
        await until_status(app, run.id, "waiting")
        await clock.advance("1 hour")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == ["a", "b", "c"]
    assert calls == ["a", "b", "c"]


async def test_paused_waiting_run_ignores_its_timer_until_resumed(
    make_app: AppFactory, clock: FakeClock
) -> None:
    await _fresh()
    async with make_app([Pipeline]) as app:
        run = await app.trigger("pipeline")
        await until_status(app, run.id, "waiting")
        await app.pause(run.id)
        await clock.advance("2 hours")
        await idle(app)
        assert (await app.get_run(run.id)).status == "paused"
        await app.resume(run.id)
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.status == "completed"


async def test_retry_a_failed_run_replays_finished_steps(
    make_app: AppFactory, clock: FakeClock
) -> None:
    await _fresh()
    async with make_app([Pipeline]) as app:
        run = await app.trigger("pipeline", {"fail": True})
        await until_status(app, run.id, "waiting")
        await clock.advance("1 hour")
        failed = await app.wait_for_run(run.id, timeout="20 seconds")
        assert failed.status == "failed"
        assert failed.error is not None and "bug in the loop" in failed.error["message"]
        calls.append("fixed")
        await app.retry(run.id)
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.status == "completed"
    assert calls == ["a", "b", "c", "fixed"]  # nothing ran twice


async def test_restart_from_a_step_reruns_it_and_later_ones(
    make_app: AppFactory, clock: FakeClock
) -> None:
    await _fresh()
    async with make_app([Pipeline]) as app:
        run = await app.trigger("pipeline")
        await until_status(app, run.id, "waiting")
        await clock.advance("1 hour")
        await app.wait_for_run(run.id, timeout="20 seconds")
        with pytest.raises(InvalidRunState, match="no step named 'z'"):
            await app.restart(run.id, from_step="z")
        await app.restart(run.id, from_step="b")
        await until_status(app, run.id, "waiting")  # the sleep after b is new again
        await clock.advance("1 hour")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.status == "completed"
    assert calls == ["a", "b", "c", "b", "c"]


async def _true(value: bool) -> bool:
    return value


flaky_calls: list[int] = []


class Flaky(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        def once_broken() -> str:
            flaky_calls.append(1)
            if len(flaky_calls) == 1:
                raise RuntimeError("first time broken")
            return "fine"

        return await step.do("call", once_broken, retries=0)


async def test_retry_keeps_the_failed_attempt_in_history(make_app: AppFactory) -> None:
    flaky_calls.clear()
    async with make_app([Flaky]) as app:
        run = await app.trigger("flaky")
        assert (await app.wait_for_run(run.id, timeout="20 seconds")).status == "failed"
        with pytest.raises(InvalidRunState, match=r"cannot pause .* it is failed"):
            await app.pause(run.id)
        await app.retry(run.id)
        done = await app.wait_for_run(run.id, timeout="20 seconds")
        with pytest.raises(InvalidRunState, match="retry works on failed runs"):
            await app.retry(run.id)
    assert done.output == "fine"
    attempts = done.step("call").attempts
    assert [a.status for a in attempts] == ["failed", "completed"]
    assert attempts[0].error is not None and "first time broken" in attempts[0].error["message"]
