"""The loop the chaos test runs under random SIGKILLs: every durable feature in one run.

A step with a side effect, a durable sleep, a step that fails its first attempt and is
retried after a delay, a wait for an event, a scan provisioned and waited for, and a last
step. Side effects are lines ``<i>:<tag>`` appended to ``event.body["log"]`` (outside the
store), so the test can count them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pulseloop import Event, Loop, Retries, Step, StepCtx


def _effect(log: Path, i: int, tag: str) -> None:
    with log.open("a") as f:
        f.write(f"{i}:{tag}\n")


class Chaos(Loop):
    """See the module docstring; returns what each durable feature gave it."""

    name = "chaos"

    async def run(self, event: Event, step: Step) -> Any:
        i, log = int(event.body["i"]), Path(event.body["log"])

        def first() -> int:
            _effect(log, i, "a")
            return i * 2

        a = await step.do("a", first)
        await step.sleep("nap", "300 milliseconds")

        def flaky(ctx: StepCtx) -> int:
            _effect(log, i, "flaky")
            if ctx.attempt == 1:
                raise RuntimeError("the first attempt always fails")
            return ctx.attempt

        attempts = await step.do("flaky", flaky, retries=Retries(limit=5, delay="100 milliseconds"))
        reply = await step.wait_for_event("reply", type="reply", timeout="1 hour")

        async def provision(ctx: StepCtx) -> Any:
            return await ctx.FACIAL_SCAN.create(expires_in=3600, metadata={"i": i})

        await step.do("provision", provision)
        scan = await step.wait_for_scan(timeout="1 hour")

        def last() -> int:
            _effect(log, i, "b")
            return i

        await step.do("b", last)
        return {
            "i": i,
            "a": a,
            "attempts": attempts,
            "reply": reply,
            "scan": scan["status"],
            "heart_rate": scan["vitals"]["heart_rate_bpm"],
            "metadata": scan["metadata"],
        }
