"""A loop words its own line for run lists (``Loop.summary``), instead of operators
guessing from raw outputs; a broken summary never harms the run."""

from __future__ import annotations

from typing import Any

from pulseloop import Event, Loop, Step
from tests.conftest import AppFactory
from tests.engine.helpers import idle


class Summarised(Loop):
    """Waits for a reply, then reports it; says so in its summary at each stage."""

    async def run(self, event: Event, step: Step) -> Any:
        reply = await step.wait_for_event("reply", type="reply", timeout="1 hour")
        return {"reply": reply}

    def summary(self, event: Event, output: Any) -> str | None:
        who = event.body["patient"]
        if output is None:
            return f"{who}: waiting for a reply " + "." * 300  # cut to MAX_SUMMARY_CHARS
        return f"{who}: replied {output['reply']!r}"


class BrokenSummary(Loop):
    """A summary that raises."""

    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("work", lambda: 7)

    def summary(self, event: Event, output: Any) -> str | None:
        raise RuntimeError("a bug in the summary")


async def test_the_summary_follows_the_run_into_every_list(make_app: AppFactory) -> None:
    async with make_app([Summarised]) as app:
        run = await app.trigger("summarised", {"patient": "p-17"})
        await idle(app)
        parked = await app.get_run(run.id)
        assert parked.status == "waiting"
        assert parked.summary is not None
        assert parked.summary.startswith("p-17: waiting for a reply")
        assert len(parked.summary) == 200
        await app.send_event(run.id, "reply", "yes")
        done = await app.wait_for_run(run.id, timeout="1 minute")
        listed = await app.list_runs()
    assert done.summary == "p-17: replied 'yes'"
    assert [r.summary for r in listed] == ["p-17: replied 'yes'"]


async def test_a_summary_that_raises_leaves_the_run_alone(make_app: AppFactory) -> None:
    async with make_app([BrokenSummary]) as app:
        run = await app.trigger("broken-summary")
        done = await app.wait_for_run(run.id, timeout="1 minute")
    assert (done.status, done.output, done.summary) == ("completed", 7, None)
