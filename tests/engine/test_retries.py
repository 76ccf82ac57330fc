"""Retries and step timeouts, driven by a fake clock: no test sleeps for a timer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pulseloop import Event, Loop, NonRetryableError, Retries, Step
from pulseloop.errors import PulseloopError
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.engine.helpers import idle
from tests.helpers import eventually, until_status

attempts: list[int] = []


class Flaky(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        def call(ctx: Any) -> str:
            attempts.append(ctx.attempt)
            if ctx.attempt < 3:
                raise ConnectionError(f"attempt {ctx.attempt} failed")
            return "ok"

        return await step.do(
            "call api", call, retries=Retries(limit=5, delay="10 seconds", backoff="exponential")
        )


async def test_retry_waits_on_a_parked_timer_with_backoff(
    make_app: AppFactory, clock: FakeClock
) -> None:
    attempts.clear()
    async with make_app([Flaky]) as app:
        run = await app.trigger("flaky")
        await until_status(app, run.id, "waiting")  # parked: no worker held
        assert attempts == [1]
        assert app.worker is not None and app.worker.active == 0
        await clock.advance("9 seconds")
        await idle(app)
        assert attempts == [1]  # not yet due
        await clock.advance("1 second")
        await eventually(lambda: _true(len(attempts) == 2), "second attempt")
        await until_status(app, run.id, "waiting")
        await clock.advance("19 seconds")  # exponential: 20 s before retry 2
        await idle(app)
        assert attempts == [1, 2]
        await clock.advance("1 second")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == "ok"
    assert attempts == [1, 2, 3]
    info = done.step("call api")
    assert [a.status for a in info.attempts] == ["failed", "failed", "completed"]
    assert info.attempts[0].error is not None
    assert info.attempts[0].error["type"] == "ConnectionError"


async def _true(value: bool) -> bool:
    return value


class AlwaysFails(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        def fail(ctx: Any) -> None:
            attempts.append(ctx.attempt)
            raise RuntimeError("down")

        return await step.do("fail", fail, retries={"limit": 2, "delay": 0, "backoff": "constant"})


async def test_last_failed_attempt_raises_at_once(make_app: AppFactory) -> None:
    attempts.clear()
    async with make_app([AlwaysFails]) as app:
        run = await app.trigger("always-fails")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert attempts == [1, 2, 3]
    assert done.status == "failed"
    assert done.error is not None and done.error["type"] == "StepFailed"
    assert "after 3 attempt(s)" in done.error["message"]
    assert done.step("fail").status == "failed"


class NonRetryable(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        def refuse() -> None:
            attempts.append(1)
            raise NonRetryableError("patient opted out")

        return await step.do("refuse", refuse)


async def test_non_retryable_error_fails_at_once(make_app: AppFactory) -> None:
    attempts.clear()
    async with make_app([NonRetryable]) as app:
        run = await app.trigger("non-retryable")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert attempts == [1]
    assert done.status == "failed"
    assert "NonRetryableError: patient opted out" in done.error["message"]


class Predicate(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        def bad_input() -> None:
            attempts.append(1)
            raise ValueError("bad phone number")

        policy = Retries(limit=5, delay=0, retry_if=lambda e: not isinstance(e, ValueError))
        return await step.do("validate", bad_input, retries=policy)


async def test_retry_if_predicate_stops_retries(make_app: AppFactory) -> None:
    attempts.clear()
    async with make_app([Predicate]) as app:
        run = await app.trigger("predicate")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert attempts == [1]
    assert done.status == "failed"


started: list[int] = []
stopped: list[int] = []


class Slow(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        async def hang(ctx: Any) -> str:
            started.append(ctx.attempt)
            if ctx.attempt == 1:
                try:
                    await asyncio.Event().wait()  # never finishes on its own
                except asyncio.CancelledError:
                    stopped.append(ctx.attempt)
                    raise
            return "second try"

        return await step.do("hang", hang, timeout="1 minute", retries=Retries(limit=1, delay=0))


async def test_step_timeout_fails_the_attempt_and_retries(
    make_app: AppFactory, clock: FakeClock
) -> None:
    started.clear()
    stopped.clear()
    async with make_app([Slow]) as app:
        run = await app.trigger("slow")
        await eventually(lambda: _true(started == [1]), "first attempt started")
        await clock.advance("59 seconds")  # a due timeout would have stopped the attempt now
        assert stopped == []
        assert (await app.get_run(run.id)).status == "running"
        await clock.advance("1 second")
        await eventually(lambda: _true(stopped == [1]), "the timed-out attempt stopped")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == "second try"
    first = done.step("hang").attempts[0]
    assert first.error is not None and first.error["type"] == "StepTimeout"


def test_retries_policy_validation() -> None:
    with pytest.raises(PulseloopError, match="backoff 'sometimes'"):
        Retries(backoff="sometimes")  # type: ignore[arg-type]
    with pytest.raises(PulseloopError, match="limit -1"):
        Retries(limit=-1)
    assert [Retries(delay="10 seconds").delay_s(n) for n in (1, 2, 3)] == [10, 20, 40]
    assert [Retries(delay=5, backoff="linear").delay_s(n) for n in (1, 2, 3)] == [5, 10, 15]
    assert Retries(delay=5, backoff="constant").delay_s(3) == 5
