"""OpenTelemetry spans: one trace per run, a span per pass and per step attempt.

Spans go to the SDK's in-memory exporter; time is a fake clock, so retries and sleeps
are driven by the test, and ``idle`` waits for the worker instead of sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pulseloop import Cron, Event, Loop, Retries, Step
from pulseloop.engine import tracing
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.engine.helpers import idle


class Otel:
    """An SDK provider exporting to memory, and the spans it finished."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def spans(self, prefix: str = "") -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name.startswith(prefix)]

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]


@pytest.fixture
def otel() -> Iterator[Otel]:
    """Tracing on for this test, exported to memory; off again after it."""
    found = Otel()
    tracing.enable_tracing(found.provider)
    try:
        yield found
    finally:
        tracing.disable_tracing()
        found.provider.shutdown()


def _parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def _trace(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def _events(span: ReadableSpan, name: str) -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for e in span.events if e.name == name]


calls: list[str] = []


class TwoSteps(Loop):
    name = "two-steps"

    async def run(self, event: Event, step: Step) -> Any:
        a = await step.do("fetch", lambda: 1)
        b = await step.do("store", lambda: a + 1)
        return b


async def test_a_run_is_a_pass_span_with_a_child_span_per_step(
    make_app: AppFactory, otel: Otel
) -> None:
    async with make_app([TwoSteps]) as app:
        run = await app.trigger("two-steps", {"patient": "Ada"})
        done = await app.wait_for_run(run.id, timeout="20 seconds")
        await idle(app)
    assert done.output == 2
    (pass_,) = otel.named("run two-steps")
    steps = otel.spans("step ")
    assert [s.name for s in steps] == ["step fetch", "step store"]
    assert all(_parent_id(s) == _id(pass_) for s in steps)
    assert all(_trace(s) == _trace(pass_) for s in steps)
    attributes = dict(pass_.attributes or {})
    assert attributes["pulseloop.run.id"] == run.id
    assert attributes["pulseloop.loop"] == "two-steps"
    assert attributes["pulseloop.org"] == app.org
    assert attributes["pulseloop.run.attempt"] == 1
    assert attributes["pulseloop.run.resumed"] is False
    assert attributes["pulseloop.run.outcome"] == "completed"
    fetch = dict(steps[0].attributes or {})
    assert fetch["pulseloop.step.name"] == "fetch"
    assert fetch["pulseloop.step.attempt"] == 1
    assert fetch["pulseloop.step.outcome"] == "completed"
    everything = repr([(s.name, s.attributes, s.events) for s in otel.spans()])
    assert "Ada" not in everything  # the body is patient data: never exported


class FlakyAfterFirst(Loop):
    name = "flaky-after-first"

    async def run(self, event: Event, step: Step) -> Any:
        await step.do("first", lambda: calls.append("first"))

        def call(ctx: Any) -> str:
            calls.append(f"call {ctx.attempt}")
            if ctx.attempt < 3:
                raise ConnectionError(f"attempt {ctx.attempt} for patient Ada failed")
            return "ok"

        return await step.do("call", call, retries=Retries(limit=5, delay="10 seconds"))


async def test_retries_are_attempt_spans_in_later_passes_of_one_trace(
    make_app: AppFactory, clock: FakeClock, otel: Otel
) -> None:
    calls.clear()
    async with make_app([FlakyAfterFirst]) as app:
        run = await app.trigger("flaky-after-first")
        for _ in range(2):
            await idle(app)  # parked for the retry delay
            await clock.advance("1 minute")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
        await idle(app)
    assert done.output == "ok"
    assert calls == ["first", "call 1", "call 2", "call 3"]
    passes = otel.named("run flaky-after-first")
    assert len(passes) == 3
    assert len({_trace(s) for s in otel.spans()}) == 1  # one trace across parks
    assert len(otel.named("step first")) == 1  # replays are not new work
    attempts = otel.named("step call")
    assert [dict(s.attributes or {})["pulseloop.step.attempt"] for s in attempts] == [1, 2, 3]
    outcomes = [dict(s.attributes or {})["pulseloop.step.outcome"] for s in attempts]
    assert outcomes == ["failed", "failed", "completed"]
    for attempt, pass_ in zip(attempts, passes, strict=True):
        assert _parent_id(attempt) == _id(pass_)
    failed = attempts[0]
    assert dict(failed.attributes or {})["error.type"] == "ConnectionError"
    assert failed.status.status_code == trace.StatusCode.ERROR
    assert "Ada" not in repr((failed.status.description, failed.attributes, failed.events))
    assert _events(passes[0], "pulseloop.step.retry")[0]["pulseloop.step.attempt"] == 1
    assert [dict(p.attributes or {})["pulseloop.run.resumed"] for p in passes] == [
        False,
        True,
        True,
    ]
    for later in passes[1:]:
        replays = _events(later, "pulseloop.step.replayed")
        assert [r["pulseloop.step.name"] for r in replays] == ["first"]
        assert dict(later.attributes or {})["pulseloop.run.replayed_steps"] == 1


class Nap(Loop):
    name = "nap"

    async def run(self, event: Event, step: Step) -> Any:
        await step.do("before", lambda: 1)
        await step.sleep("nap", "1 hour")
        return await step.do("after", lambda: 2)


async def test_a_sleep_is_wait_and_park_events_and_the_replay_emits_no_step_span(
    make_app: AppFactory, clock: FakeClock, otel: Otel
) -> None:
    async with make_app([Nap]) as app:
        run = await app.trigger("nap")
        await idle(app)
        first_pass = otel.named("run nap")
        assert len(first_pass) == 1
        assert dict(first_pass[0].attributes or {})["pulseloop.run.outcome"] == "waiting"
        (wait,) = _events(first_pass[0], "pulseloop.wait")
        assert wait["pulseloop.wait.name"] == "nap"
        assert wait["pulseloop.wait.kind"] == "sleep"
        assert wait["pulseloop.wait.deadline"] == pytest.approx(clock.now() + 3600)
        (park,) = _events(first_pass[0], "pulseloop.park")
        assert park["pulseloop.wake_at"] == pytest.approx(clock.now() + 3600)
        await clock.advance("1 hour")
        await app.wait_for_run(run.id, timeout="20 seconds")
        await idle(app)
    passes = otel.named("run nap")
    assert len(passes) == 2
    assert _trace(passes[0]) == _trace(passes[1])
    assert [s.name for s in otel.spans("step ")] == ["step before", "step after"]
    second = passes[1]
    assert _events(second, "pulseloop.wait.resolved") == [
        {"pulseloop.wait.name": "nap", "pulseloop.wait.kind": "sleep",
         "pulseloop.wait.outcome": "completed"}
    ]  # fmt: skip
    assert [r["pulseloop.step.name"] for r in _events(second, "pulseloop.step.replayed")] == [
        "before"
    ]


class Instrumented(Loop):
    """Step callbacks that open spans of their own, as an instrumented HTTP client does."""

    name = "instrumented"
    tracer: trace.Tracer

    async def run(self, event: Event, step: Step) -> Any:
        tracer = type(self).tracer

        async def async_call() -> str:
            with tracer.start_as_current_span("GET /async"):
                await asyncio.sleep(0)
            return "a"

        def sync_call() -> str:  # runs in a thread: the context must follow it
            with tracer.start_as_current_span("GET /sync"):
                return "s"

        return [await step.do("async", async_call), await step.do("sync", sync_call)]


async def test_spans_made_inside_a_step_callback_are_children_of_its_attempt(
    make_app: AppFactory, otel: Otel
) -> None:
    Instrumented.tracer = otel.tracer
    async with make_app([Instrumented]) as app:
        run = await app.trigger("instrumented")
        await app.wait_for_run(run.id, timeout="20 seconds")
        await idle(app)
    (async_step,) = otel.named("step async")
    (sync_step,) = otel.named("step sync")
    (inner_async,) = otel.named("GET /async")
    (inner_sync,) = otel.named("GET /sync")
    assert _parent_id(inner_async) == _id(async_step)
    assert _parent_id(inner_sync) == _id(sync_step)
    assert _trace(inner_sync) == _trace(sync_step)


async def test_no_spans_while_tracing_is_off(make_app: AppFactory) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable_tracing(provider)
    tracing.disable_tracing()
    async with make_app([TwoSteps]) as app:
        run = await app.trigger("two-steps")
        await app.wait_for_run(run.id, timeout="20 seconds")
    assert exporter.get_finished_spans() == ()
    provider.shutdown()


def test_tracing_hooks_refuse_to_run_before_enable() -> None:
    tracing.disable_tracing()
    saved, tracing._spans = tracing._spans, None
    try:
        with pytest.raises(RuntimeError, match="enable_tracing"):
            tracing.replayed("a", "do")
    finally:
        tracing._spans = saved


async def test_a_run_triggered_inside_a_span_joins_its_trace(
    make_app: AppFactory, clock: FakeClock, otel: Otel
) -> None:
    async with make_app([Nap]) as app:
        with otel.tracer.start_as_current_span("POST /v1/loops/nap/runs") as handler:
            run = await app.trigger("nap")
        await idle(app)
        await clock.advance("1 hour")
        await app.wait_for_run(run.id, timeout="20 seconds")
        await idle(app)
        stored = await app.run_record(run.id)
    (trigger,) = otel.named("trigger nap")
    passes = otel.named("run nap")
    assert len(passes) == 2
    handler_context = handler.get_span_context()
    assert _parent_id(trigger) == handler_context.span_id
    assert {_trace(s) for s in [trigger, *passes]} == {handler_context.trace_id}
    assert all(_parent_id(p) == _id(trigger) for p in passes)  # across the park
    assert dict(trigger.attributes or {})["pulseloop.run.id"] == run.id
    assert stored is not None and stored.trace_parent is not None
    assert f"{handler_context.trace_id:032x}" in stored.trace_parent


async def test_a_run_stored_without_a_trace_gets_one_derived_from_its_key(
    make_app: AppFactory, clock: FakeClock, otel: Otel
) -> None:
    async with make_app([Nap]) as app:
        tracing.disable_tracing()  # triggered while tracing is off: nothing stored
        run = await app.trigger("nap")
        tracing.enable_tracing(otel.provider)
        await idle(app)
        await clock.advance("1 hour")
        await app.wait_for_run(run.id, timeout="20 seconds")
        await idle(app)
    assert otel.named("trigger nap") == []
    passes = otel.named("run nap")
    assert len(passes) == 2
    assert _trace(passes[0]) == _trace(passes[1])
    assert passes[0].parent is not None and passes[0].parent.is_remote


class MorningNap(Loop):
    name = "morning-nap"
    schedules = (Cron("0 8 * * *", id="morning-nap"),)

    async def run(self, event: Event, step: Step) -> Any:
        await step.sleep("nap", "1 hour")
        return await step.do("after", lambda: 2)


async def test_a_schedule_tick_run_is_rooted_in_a_trigger_span(
    make_app: AppFactory, clock: FakeClock, otel: Otel
) -> None:
    async with make_app([MorningNap]) as app:
        (schedule,) = await app.schedules.list()
        assert schedule.next_fire is not None
        await clock.advance(schedule.next_fire.timestamp() - clock.now())
        await idle(app)
        await clock.advance("1 hour")
        await idle(app)
        (run,) = await app.list_runs()
        assert run.status == "completed"
    (trigger,) = otel.named("trigger morning-nap")
    passes = otel.named("run morning-nap")
    assert len(passes) == 2
    assert trigger.parent is None  # the timer pass fired it: a root
    assert dict(trigger.attributes or {})["pulseloop.run.id"] == run.id
    assert all(_parent_id(p) == _id(trigger) for p in passes)


async def test_a_debounced_run_joins_the_trace_of_the_trigger_that_made_it(
    make_app: AppFactory, clock: FakeClock, otel: Otel
) -> None:
    async with make_app([Nap], worker=False) as app:
        with otel.tracer.start_as_current_span("first trigger") as first:
            run = await app.trigger("nap", 1, debounce="5 minutes", debounce_key="p1")
        with otel.tracer.start_as_current_span("second trigger"):
            again = await app.trigger("nap", 2, debounce="5 minutes", debounce_key="p1")
        stored = await app.run_record(run.id)
    assert again.id == run.id
    assert stored is not None and stored.trace_parent is not None
    assert f"{first.get_span_context().trace_id:032x}" in stored.trace_parent


class Kid(Loop):
    name = "kid"

    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("grow", lambda: 2)


class Parent(Loop):
    name = "parent"

    async def run(self, event: Event, step: Step) -> Any:
        return await step.run_loop("child", "kid", {"n": 1})


async def test_a_child_loop_joins_its_parents_trace(make_app: AppFactory, otel: Otel) -> None:
    async with make_app([Parent, Kid]) as app:
        run = await app.trigger("parent")
        done = await app.wait_for_run(run.id, timeout="20 seconds")
        await idle(app)
    assert done.output == 2
    parent_passes = otel.named("run parent")
    (child_trigger,) = otel.named("trigger kid")
    (child_pass,) = otel.named("run kid")
    assert len(parent_passes) == 2  # started the child and parked; resumed with its output
    assert {_trace(s) for s in [*parent_passes, child_trigger, child_pass]} == {
        _trace(parent_passes[0])
    }
    assert _parent_id(child_trigger) == _id(parent_passes[0])  # started by that pass
    assert _parent_id(child_pass) == _id(child_trigger)
