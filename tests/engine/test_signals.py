"""Signals: each event or scan outcome is consumed by exactly one wait.

Successive waits on one event type get successive events, in the order they were sent;
an event sent before its wait is buffered; forgetting steps (restart) gives back what they
consumed, and a retry, which forgets only the failed step, gives back nothing.
"""

from __future__ import annotations

from typing import Any

from pulseloop import App, Event, Loop, NonRetryableError, Run, Step
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.engine.helpers import idle


class TwoReplies(Loop):
    """Waits twice for the same event type."""

    async def run(self, event: Event, step: Step) -> Any:
        first = await step.wait_for_event("first reply", type="reply", timeout="1 hour")
        second = await step.wait_for_event("second reply", type="reply", timeout="1 hour")
        return [first, second]


async def _settled(app: App, run_id: str) -> Run:
    """The run once the worker has done all it can with it (finished or parked).

    Idle again while the run is still queued or running: seen once in ~650 PostgreSQL
    tests, an idle pass ended before the run's claim (cause not found yet; see the note on
    issue 9), and the assertion then read a run mid-execution.
    """
    for _ in range(5):
        await idle(app)
        run = await app.get_run(run_id)
        if run.status not in ("queued", "running"):
            return run
    return run


async def test_two_waits_on_one_type_get_one_event_each(make_app: AppFactory) -> None:
    async with make_app([TwoReplies]) as app:
        run = await app.trigger("two-replies")
        await app.send_event(run.id, "reply", "one")
        parked = await _settled(app, run.id)
        assert parked.status == "waiting"  # the one event is used up by the first wait
        assert parked.step("first reply").output == "one"
        assert parked.step("second reply").status == "waiting"
        await app.send_event(run.id, "reply", "two")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == ["one", "two"]


async def test_two_events_sent_while_waiting_go_to_the_waits_in_order(
    make_app: AppFactory,
) -> None:
    async with make_app([TwoReplies]) as app:
        run = await app.trigger("two-replies")
        assert (await _settled(app, run.id)).status == "waiting"
        await app.send_event(run.id, "reply", "one")
        await app.send_event(run.id, "reply", "two")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == ["one", "two"]


async def test_events_buffered_before_both_waits_are_each_used_once(
    make_app: AppFactory,
) -> None:
    async with make_app([TwoReplies], worker=False) as client:
        run = await client.trigger("two-replies")
        for text in ("one", "two", "three"):
            await client.send_event(run.id, "reply", text)
    async with make_app([TwoReplies]) as app:
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == ["one", "two"]  # "three" stays buffered for a later wait


async def test_restart_from_a_consumed_wait_gives_its_event_back(make_app: AppFactory) -> None:
    async with make_app([TwoReplies]) as app:
        run = await app.trigger("two-replies")
        await app.send_event(run.id, "reply", "one")
        await app.send_event(run.id, "reply", "two")
        assert (await app.wait_for_run(run.id, timeout="20 seconds")).output == ["one", "two"]

        await app.send_event(run.id, "reply", "three")  # newer than the one given back
        await app.restart(run.id, from_step="second reply")
        again = await _settled(app, run.id)
        assert again.status == "completed", again.status  # not waiting for a lost event
        assert again.output == ["one", "two"]

        await app.restart(run.id, from_step="first reply")  # gives back both, in order
        again = await _settled(app, run.id)
    assert again.status == "completed", again.status
    assert again.output == ["one", "two"]


async def test_restart_before_the_waits_gives_back_everything_they_consumed(
    make_app: AppFactory,
) -> None:
    class AskThenTwoReplies(Loop):
        async def run(self, event: Event, step: Step) -> Any:
            await step.do("ask", lambda: "asked")
            return await TwoReplies().run(event, step)

    async with make_app([AskThenTwoReplies]) as app:
        run = await app.trigger("ask-then-two-replies")
        await app.send_event(run.id, "reply", "one")
        await app.send_event(run.id, "reply", "two")
        await app.wait_for_run(run.id, timeout="20 seconds")
        await app.restart(run.id, from_step="ask")
        again = await _settled(app, run.id)
    assert again.status == "completed", again.status
    assert again.output == ["one", "two"]


attempts: list[str] = []


class ReplyThenCheck(Loop):
    """Uses a reply in a step that fails until the test fixes it, then waits again."""

    async def run(self, event: Event, step: Step) -> Any:
        first = await step.wait_for_event("first reply", type="reply", timeout="1 hour")

        def check() -> str:
            attempts.append(first)
            if "fixed" not in attempts:
                raise NonRetryableError(f"cannot use {first!r} yet")
            return f"checked {first}"

        checked = await step.do("check", check)
        second = await step.wait_for_event("second reply", type="reply", timeout="1 hour")
        return [checked, second]


async def test_retry_after_a_consumed_wait_keeps_its_event_and_takes_no_other(
    make_app: AppFactory,
) -> None:
    attempts.clear()
    async with make_app([ReplyThenCheck]) as app:
        run = await app.trigger("reply-then-check")
        await app.send_event(run.id, "reply", "one")
        failed = await app.wait_for_run(run.id, timeout="20 seconds")
        assert failed.status == "failed"
        attempts.append("fixed")

        await app.retry(run.id)
        parked = await _settled(app, run.id)
        assert parked.status == "waiting", parked.status  # "one" was used by the first wait
        assert parked.step("first reply").output == "one"
        assert parked.step("check").output == "checked one"

        await app.send_event(run.id, "reply", "two")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == ["checked one", "two"]
    assert attempts == ["one", "fixed", "one"]


class ScanOutcome(Loop):
    """Provisions a scan and waits for its outcome (here: it expires)."""

    async def run(self, event: Event, step: Step) -> Any:
        await step.do("provision", lambda ctx: ctx.FACIAL_SCAN.create(expires_in=60))
        scan = await step.wait_for_scan(timeout="30 minutes")
        return {"status": scan["status"], "id": scan["id"]}


async def test_restart_from_a_scan_wait_gives_the_scan_outcome_back(
    make_app: AppFactory, clock: FakeClock
) -> None:
    async with make_app([ScanOutcome]) as app:
        run = await app.trigger("scan-outcome")
        assert (await _settled(app, run.id)).status == "waiting"
        await clock.advance("1 minute")  # the link expires: the scan's outcome is "expired"
        done = await app.wait_for_run(run.id, timeout="20 seconds")
        assert done.output["status"] == "expired"

        await app.restart(run.id, from_step="wait for scan #1")
        again = await _settled(app, run.id)
    assert again.status == "completed", again.status  # not waiting 30 minutes for nothing
    assert again.output == done.output
