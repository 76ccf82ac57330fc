"""Replay: finished steps never run again; results are JSON round-tripped."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from pulseloop import Event, Loop, Step
from pulseloop.errors import ContextUnavailable, DuplicateStepName, LimitExceeded, StepFailed
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.helpers import until_status

effects: list[str] = []


class Replayed(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        async def charge() -> dict[str, Any]:
            effects.append("charge")
            return {"pair": (1, 2), "amount": 5}

        first = await step.do("charge", charge)
        await step.sleep("cool down", "1 hour")

        def notify() -> str:
            effects.append("notify")
            return "sent"

        second = await step.do("notify", notify)
        return {"first": first, "second": second, "types": type(first["pair"]).__name__}


async def test_resumed_run_reexecutes_no_finished_step(
    make_app: AppFactory, clock: FakeClock
) -> None:
    effects.clear()
    async with make_app([Replayed]) as app:
        run = await app.trigger("replayed", {"n": 1})
        await until_status(app, run.id, "waiting")
        assert effects == ["charge"]
        await clock.advance("1 hour")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.status == "completed"
    assert effects == ["charge", "notify"]
    # a tuple comes back as a list on the first run too, not only on replay
    assert done.output == {
        "first": {"pair": [1, 2], "amount": 5},
        "second": "sent",
        "types": "list",
    }
    assert [s.name for s in done.steps] == ["charge", "cool down", "notify"]
    assert all(len(s.attempts) <= 1 for s in done.steps)


async def test_resume_after_restart_of_the_app(make_app: AppFactory, clock: FakeClock) -> None:
    effects.clear()
    async with make_app([Replayed]) as app:
        run = await app.trigger("replayed")
        await until_status(app, run.id, "waiting")
    await clock.advance("2 hours")
    async with make_app([Replayed]) as app:
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.status == "completed"
    assert effects == ["charge", "notify"]


class Unserialisable(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("make a set", lambda: {1, 2})


async def test_non_serialisable_result_fails_naming_the_step(make_app: AppFactory) -> None:
    async with make_app([Unserialisable]) as app:
        run = await app.trigger("unserialisable")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.status == "failed"
    assert done.error is not None
    assert done.error["type"] == "NotSerializable"
    assert "'make a set'" in done.error["message"]
    # deterministic: one attempt, no retries
    assert len(done.step("make a set").attempts) == 1


class Duplicate(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        await step.do("same", lambda: 1)
        with contextlib.suppress(DuplicateStepName):  # swallowing it must not save the run
            await step.do("same", lambda: 2)
        return "should not complete"


async def test_duplicate_step_name_fails_the_run(make_app: AppFactory) -> None:
    async with make_app([Duplicate]) as app:
        run = await app.trigger("duplicate")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.status == "failed"
    assert done.error is not None and done.error["type"] == "DuplicateStepName"
    assert "'same'" in done.error["message"]


kept: list[Any] = []


class KeepsCtx(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        def grab(ctx: Any) -> str:
            kept.append(ctx)
            return str(ctx.idempotency_key)

        key = await step.do("grab", grab)
        try:
            _ = kept[-1].run_id
        except ContextUnavailable as exc:
            return {"key": key, "error": str(exc)}
        return {"key": key, "error": None}


async def test_ctx_used_after_its_step_raises(make_app: AppFactory) -> None:
    async with make_app([KeepsCtx]) as app:
        run = await app.trigger("keeps-ctx", id="run-ctx")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output["key"] == "run-ctx:grab"
    assert "'grab'" in done.output["error"]


class NoArgs(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        async def total() -> int:
            return sum(item["price"] for item in event.body["items"])

        def sync_with_ctx(ctx: Any) -> str:
            return str(ctx.step_name)

        async def returns_awaitable() -> Any:
            async def inner() -> str:
                return "awaited"

            return inner()

        return [
            await step.do("Compute total", total),
            await step.do("sync", sync_with_ctx),
            await step.do("lambda returning coroutine", lambda: returns_awaitable()),
        ]


async def test_callback_shapes(make_app: AppFactory) -> None:
    async with make_app([NoArgs]) as app:
        run = await app.trigger("no-args", {"items": [{"price": 2}, {"price": 3}]})
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == [5, "sync", "awaited"]


class TooBig(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("big", lambda: "x" * (1024 * 1024 + 1))


async def test_step_result_over_one_mib_is_refused(make_app: AppFactory) -> None:
    async with make_app([TooBig]) as app:
        run = await app.trigger("too-big")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.status == "failed"
    assert done.error is not None and done.error["type"] == "LimitExceeded"
    assert "'big'" in done.error["message"]


async def test_event_body_over_one_mib_is_refused(make_app: AppFactory) -> None:
    async with make_app([TooBig]) as app:
        with pytest.raises(LimitExceeded, match="event body"):
            await app.trigger("too-big", {"blob": "x" * (1024 * 1024)})
        assert await app.list_runs() == []


class TooManySteps(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        async def nothing() -> None:
            return None

        for i in range(10_001):
            await step.do(f"s{i}", nothing)


@pytest.mark.slow
async def test_more_than_ten_thousand_steps_fail_the_run(make_app: AppFactory) -> None:
    async with make_app([TooManySteps]) as app:
        run = await app.trigger("too-many-steps")
        done = await app.wait_for_run(run.id, timeout="5 minutes")
    assert done.status == "failed"
    assert done.error is not None and done.error["type"] == "LimitExceeded"
    assert "10,000" in done.error["message"] and "'s10000'" in done.error["message"]
    assert len(done.steps) == 10_000


booms: list[int] = []


class CatchesFailure(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        def boom() -> None:
            booms.append(1)
            raise ValueError("card declined")

        try:
            await step.do("charge", boom, retries=0)
        except StepFailed as exc:
            caught = {"type": exc.error_type, "msg": exc.error_message, "step": exc.step}
        await step.sleep("later", "1 minute")  # forces a replay of the failed step
        return caught


async def test_failed_step_reraises_same_failure_on_replay(
    make_app: AppFactory, clock: FakeClock
) -> None:
    booms.clear()
    async with make_app([CatchesFailure]) as app:
        run = await app.trigger("catches-failure")
        await until_status(app, run.id, "waiting")
        await clock.advance("1 minute")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == {"type": "ValueError", "msg": "card declined", "step": "charge"}
    assert booms == [1]
