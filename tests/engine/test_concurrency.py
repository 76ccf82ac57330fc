"""Many runs at once on one worker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pulseloop import Event, Loop, Step
from tests.conftest import AppFactory


class TenSteps(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        async def add(i: int) -> int:
            return i

        total = 0
        for i in range(10):
            total += await step.do(f"step {i}", lambda i=i: add(i))
        return total


@pytest.mark.slow
async def test_thousand_runs_of_ten_steps_all_complete(make_app: AppFactory) -> None:
    async with make_app([TenSteps], concurrency=500) as app:
        runs = await asyncio.gather(*(app.trigger("ten-steps", {"n": n}) for n in range(1000)))
        done = await asyncio.gather(*(app.wait_for_run(r.id, timeout="5 minutes") for r in runs))
        assert {r.status for r in done} == {"completed"}
        assert {r.output for r in done} == {45}
        details = await asyncio.gather(*(app.store.get_run_detail(app.org, r.id) for r in runs))
        steps = [detail.steps for detail in details]
        commits = app.store.commits
    assert sum(len(s) for s in steps) == 10_000
    assert all(
        [s.name for s in run_steps] == [f"step {i}" for i in range(10)] for run_steps in steps
    )
    # group commit: step records of concurrent runs share commits
    assert commits < 10_000
