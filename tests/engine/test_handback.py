"""A worker that stops gracefully hands its runs on at once.

Stopping an App while a step is in flight used to clear the lease but leave the run
``running``; claims take only *expired* leases, so the next worker never took it and the
run stayed ``running`` forever.
"""

from __future__ import annotations

import asyncio

from pulseloop import Event, Loop, Step
from tests.conftest import AppFactory

entered = asyncio.Event()
release = asyncio.Event()
calls: list[str] = []


async def _blocking() -> str:
    calls.append("slow")
    entered.set()
    await release.wait()
    return "slow"


class HandBack(Loop):
    name = "hand-back"

    async def run(self, event: Event, step: Step) -> list[str]:
        first = await step.do("first", lambda: "first")
        slow = await step.do("slow", _blocking)
        return [first, slow]


async def test_a_run_in_flight_at_a_graceful_stop_is_taken_by_the_next_worker(
    make_app: AppFactory,
) -> None:
    global entered, release
    entered, release = asyncio.Event(), asyncio.Event()  # bound to this test's loop
    calls.clear()
    async with make_app([HandBack]) as app:
        run = await app.trigger("hand-back")
        await entered.wait()
    # stopped mid-step: the next worker must take the run without waiting out any lease
    release.set()
    async with make_app([HandBack]) as app:
        assert app.worker is not None
        await app.worker.idle()
        final = await app.get_run(run.id)
    assert final.status == "completed"
    assert final.output == ["first", "slow"]
    assert calls == ["slow", "slow"]  # the interrupted step ran again, the first did not
