"""Child-loop fan-out: one parent gathers N children (each one step); time from trigger
to the parent's completion, and how many times the parent's ``run()`` executed.

    .venv/bin/python -m bench.fanout --backend sqlite --children 500

A parent woken once per child would execute N + 1 times and replay O(N) steps each time
(O(N^2) work); woken once when every child has ended it executes twice.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.backends import Databases

from pulseloop import App, Event, Loop, Step

PASSES = [0]


class Leaf(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("work", lambda: event.body * 2)


class Fan(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        PASSES[0] += 1
        outs = await asyncio.gather(
            *(step.run_loop(f"leaf-{i}", Leaf, i) for i in range(event.body["n"]))
        )
        return sum(outs)


async def measure(url: str, n: int) -> dict[str, Any]:
    """One fan-out of ``n`` children on a fresh database."""
    async with App([Fan, Leaf], url, poll_interval="50 milliseconds") as app:
        started = time.perf_counter()
        run = await app.trigger("fan", {"n": n})
        done = await app.wait_for_run(run.id, timeout="10 minutes")
        elapsed = time.perf_counter() - started
    assert done.output == n * (n - 1), done.error
    return {"children": n, "seconds": round(elapsed, 3), "parent_executions": PASSES[0]}


def main() -> None:
    """Parse the options, run one fan-out, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--children", type=int, default=500)
    options = parser.parse_args()
    databases = Databases(options.backend)
    try:
        print(options.backend, asyncio.run(measure(databases.url("fanout"), options.children)))
    finally:
        databases.close()


if __name__ == "__main__":
    main()
