"""Child loops (``step.run_loop``) on both backends with a real worker: output back to the
parent, failures named, cancel and deadline cascading down, fan-out with gather, and a
child kept in its parent's organization."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pulseloop import App, ChildLoopFailed, Event, Loop, NonRetryableError, Step
from pulseloop.errors import RunNotFound
from pulseloop.store.webhooks import EVENTS, EndpointRecord
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.engine.helpers import idle
from tests.helpers import eventually, until_status


async def until_child(app: App, run_id: str, status: str) -> None:
    """Wait until the child run exists (the parent starts it) and has ``status``."""

    async def check() -> bool:
        try:
            return (await app.get_run(run_id)).status == status
        except RunNotFound:
            return False

    await eventually(check, f"child {run_id} reaching {status}")


class Double(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("double", lambda: event.body["n"] * 2)


class Boom(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        def fail() -> None:
            raise NonRetryableError("the pharmacy API said no")

        return await step.do("call pharmacy", fail)


class Slow(Loop):
    """Waits for a 'go' event, then returns its payload."""

    async def run(self, event: Event, step: Step) -> Any:
        return await step.wait_for_event("go", type="go", timeout="7 days")


class Parent(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        before = await step.do("before", lambda: "ok")
        doubled = await step.run_loop("double-it", "double", {"n": event.body["n"]})
        return {"before": before, "doubled": doubled}


class ParentOfBoom(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.run_loop("boom", Boom, {})


class CatchesBoom(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        try:
            await step.run_loop("boom", Boom, {})
        except ChildLoopFailed as exc:
            after = await step.do("after", lambda: "carried on")
            return {"child": exc.child_run_id, "loop": exc.loop, "after": after}
        return "unreachable"


class ParentOfSlow(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.run_loop("slow", Slow, {})


FAN_OUT_PASSES: list[str] = []
"""One entry per execution of FanOut.run (first run and each replay)."""


class FanOut(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        FAN_OUT_PASSES.append(event.id)
        results = await asyncio.gather(
            *(step.run_loop(f"slow-{i}", Slow, {"i": i}) for i in range(3))
        )
        return list(results)


HELD: dict[str, Any] = {}
"""GatherWithStep's step: its call count and the event that lets it return (per test)."""


class GatherWithStep(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        async def held() -> str:
            HELD["calls"] += 1
            await HELD["release"].wait()
            return "held"

        return list(await asyncio.gather(step.run_loop("slow", Slow, {}), step.do("held", held)))


class GrandParent(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.run_loop("parent", ParentOfSlow, {})


async def test_a_child_that_completes_returns_its_output(make_app: AppFactory) -> None:
    async with make_app([Parent, Double]) as app:
        run = await app.trigger("parent", {"n": 21}, id="visit-1")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
        child = await app.get_run("visit-1~double-it")
        family = await app.store.run_family(app.org, "visit-1")
        child_family = await app.store.run_family(app.org, child.id)
    assert done.status == "completed", done.error
    assert done.output == {"before": "ok", "doubled": 42}
    assert child.status == "completed" and child.loop == "double" and child.body == {"n": 21}
    assert done.step("double-it").kind == "child"
    assert family is not None and family.parent_id is None
    assert [(c.id, c.parent_id, c.step, c.status) for c in family.descendants] == [
        ("visit-1~double-it", "visit-1", "double-it", "completed")
    ]
    assert child_family is not None
    assert (child_family.parent_id, child_family.parent_step) == ("visit-1", "double-it")


async def test_a_failed_child_raises_in_the_parent_naming_it(make_app: AppFactory) -> None:
    async with make_app([ParentOfBoom, CatchesBoom, Boom]) as app:
        failing = await app.trigger("parent-of-boom", id="p1")
        catching = await app.trigger("catches-boom", id="p2")
        failed = await app.wait_for_run(failing.id, timeout="20 seconds")
        caught = await app.wait_for_run(catching.id, timeout="20 seconds")
    assert failed.status == "failed" and failed.error is not None
    assert failed.error["type"] == "ChildLoopFailed"
    assert failed.error["code"] == "child_loop_failed"
    assert "'p1~boom'" in failed.error["message"] and "'boom'" in failed.error["message"]
    assert "the pharmacy API said no" in failed.error["message"]
    assert caught.status == "completed", caught.error
    assert caught.output == {"child": "p2~boom", "loop": "boom", "after": "carried on"}


async def test_cancelling_a_child_fails_its_wait_as_cancelled(make_app: AppFactory) -> None:
    async with make_app([ParentOfSlow, Slow]) as app:
        run = await app.trigger("parent-of-slow", id="p")
        await until_child(app, "p~slow", "waiting")
        await until_status(app, run.id, "waiting")
        await app.cancel("p~slow")
        failed = await app.wait_for_run(run.id, timeout="20 seconds")
    assert failed.status == "failed" and failed.error is not None
    assert failed.error["type"] == "ChildLoopFailed"
    assert "was cancelled" in failed.error["message"]


async def test_cancelling_a_parent_cancels_its_children_recursively(
    make_app: AppFactory,
) -> None:
    async with make_app([GrandParent, ParentOfSlow, Slow]) as app:
        run = await app.trigger("grand-parent", id="g")
        await until_child(app, "g~parent~slow", "waiting")
        await until_child(app, "g~parent", "waiting")
        await until_status(app, run.id, "waiting")
        await app.cancel(run.id)
        statuses = [(await app.get_run(i)).status for i in ("g", "g~parent", "g~parent~slow")]
        detail = await app.get_run("g~parent~slow")
    assert statuses == ["cancelled", "cancelled", "cancelled"]
    assert all(s.status != "waiting" for s in detail.steps)  # its wait went with it


async def test_a_deadline_while_parked_on_a_child_cancels_the_child(
    make_app: AppFactory, clock: FakeClock
) -> None:
    async with make_app([ParentOfSlow, Slow]) as app:
        run = await app.trigger("parent-of-slow", id="p", run_timeout="1 hour")
        await until_child(app, "p~slow", "waiting")
        await until_status(app, run.id, "waiting")
        await clock.advance("1 hour")
        failed = await app.wait_for_run(run.id, timeout="20 seconds")
        child = await app.wait_for_run("p~slow", timeout="20 seconds")
    assert failed.status == "failed" and failed.error is not None
    assert failed.error["type"] == "RunTimeout"
    assert child.status == "cancelled"


async def test_a_childs_own_deadline_fails_it_and_the_parent_hears(
    make_app: AppFactory, clock: FakeClock
) -> None:
    class SlowWithDeadline(Slow):
        name = "slow-deadline"
        run_timeout = "10 minutes"

    class Waits(Loop):
        async def run(self, event: Event, step: Step) -> Any:
            return await step.run_loop("slow", SlowWithDeadline, {})

    async with make_app([Waits, SlowWithDeadline]) as app:
        run = await app.trigger("waits", id="p")
        await until_child(app, "p~slow", "waiting")
        await until_status(app, run.id, "waiting")
        await clock.advance("10 minutes")
        failed = await app.wait_for_run(run.id, timeout="20 seconds")
    assert failed.error is not None and failed.error["type"] == "ChildLoopFailed"
    assert "RunTimeout" in failed.error["message"]


async def test_fan_out_wakes_the_parent_once_every_child_has_ended(
    make_app: AppFactory,
) -> None:
    FAN_OUT_PASSES.clear()
    async with make_app([FanOut, Slow]) as app:
        run = await app.trigger("fan-out", id="f")
        children = [f"f~slow-{i}" for i in range(3)]
        for child in children:
            await until_child(app, child, "waiting")
        await until_status(app, run.id, "waiting")
        parked = await app.get_run(run.id)
        assert sorted(s.name for s in parked.steps if s.status == "waiting") == [
            "slow-0", "slow-1", "slow-2"
        ]  # fmt: skip
        for i in (2, 0):
            await app.send_event(children[i], "go", f"answer {i}")
            await app.wait_for_run(children[i], timeout="20 seconds")
        await idle(app)
        assert (await app.get_run(run.id)).status == "waiting"  # one child still to go
        await app.send_event(children[1], "go", "answer 1")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.status == "completed", done.error
    assert done.output == ["answer 0", "answer 1", "answer 2"]
    assert len(FAN_OUT_PASSES) == 2  # parked once with all three, woken once at the end


async def test_a_child_stays_in_its_parents_organization(make_app: AppFactory) -> None:
    async with make_app([Parent, Double], org="clinic-a") as app:
        run = await app.trigger("parent", {"n": 1}, id="visit")
        await app.wait_for_run(run.id, timeout="20 seconds")
        other = app.client("clinic-b")
        mine = await app.get_run("visit~double-it")
        with pytest.raises(RunNotFound):
            await other.get_run("visit~double-it")
        assert await app.store.run_family("clinic-b", "visit") is None
    assert mine.status == "completed"


async def test_a_step_name_that_is_no_run_id_gets_a_stable_digest_id(
    make_app: AppFactory,
) -> None:
    class Spaces(Loop):
        async def run(self, event: Event, step: Step) -> Any:
            return await step.run_loop("double it / please", Double, {"n": 2})

    async with make_app([Spaces, Double]) as app:
        run = await app.trigger("spaces", id="s")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
        family = await app.store.run_family(app.org, run.id)
    assert done.output == 4
    assert family is not None and len(family.descendants) == 1
    child_id = family.descendants[0].id
    assert child_id.startswith("s~") and len(child_id) == 2 + 32


async def test_a_branch_parking_waits_for_its_siblings_steps_before_the_run_parks(
    make_app: AppFactory,
) -> None:
    HELD.update(calls=0, release=asyncio.Event())
    async with make_app([GatherWithStep, Slow]) as app:
        run = await app.trigger("gather-with-step", id="g")
        await until_child(app, "g~slow", "waiting")
        assert (await app.get_run(run.id)).status == "running"  # held open by its sibling
        HELD["release"].set()
        await until_status(app, run.id, "waiting")
        parked = await app.get_run(run.id)
        assert parked.step("held").status == "completed"
        await app.send_event("g~slow", "go", "went")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
    assert done.output == ["went", "held"]
    assert HELD["calls"] == 1  # recorded before the run parked: never run again


async def test_a_wait_timeout_raises_and_the_child_goes_with_its_parent(
    make_app: AppFactory, clock: FakeClock
) -> None:
    class Impatient(Loop):
        async def run(self, event: Event, step: Step) -> Any:
            return await step.run_loop("slow", Slow, {}, timeout="1 hour")

    async with make_app([Impatient, Slow]) as app:
        run = await app.trigger("impatient", id="p")
        await until_child(app, "p~slow", "waiting")
        await until_status(app, run.id, "waiting")
        await clock.advance("59 minutes")
        await idle(app)
        assert (await app.get_run(run.id)).status == "waiting"
        await clock.advance("1 minute")
        failed = await app.wait_for_run(run.id, timeout="20 seconds")
        child = await app.get_run("p~slow")
    assert failed.error is not None and failed.error["type"] == "WaitTimeout"
    assert "'p~slow'" in failed.error["message"]
    assert child.status == "cancelled"  # children never outlive their parent


async def test_cancelled_children_queue_their_webhook_events(make_app: AppFactory) -> None:
    async with make_app([GrandParent, ParentOfSlow, Slow]) as app:
        endpoint = EndpointRecord("hook", app.org, "http://127.0.0.1:9/x", EVENTS, "whsec_t", 0.0)
        await app.store.webhooks.add_endpoint(endpoint)
        run = await app.trigger("grand-parent", id="g")
        await until_child(app, "g~parent~slow", "waiting")
        await until_status(app, run.id, "waiting")
        await app.cancel(run.id)
        found = await app.store.webhooks.list_deliveries(app.org, limit=100)
    assert sorted((d.event, d.run_id) for d in found) == [
        ("run.cancelled", "g"), ("run.cancelled", "g~parent"), ("run.cancelled", "g~parent~slow")
    ]  # fmt: skip
