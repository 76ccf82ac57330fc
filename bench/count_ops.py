"""Count database operations and commits per step, and how busy the SQLite thread is.

Run it: ``.venv/bin/python bench/count_ops.py [a|b]``. Wraps ``Database.run`` and
``Database._execute`` in this process only (nothing under src/ changes) and runs
workload (a) (1 run x 1,000 steps) or (b) (200 runs x 10 steps started together) once.
Prints the operations by store method, the mean group-commit batch, and the share of
wall time the SQLite thread spent inside transactions (near 100 %: the database thread
is the bottleneck).
"""

from __future__ import annotations

import asyncio
import collections
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pulseloop import App, Event, Loop, Step
from pulseloop.store.sqlite import database

counts: collections.Counter[str] = collections.Counter()
batches: list[tuple[int, float]] = []


def instrument() -> None:
    original_run = database.Database.run
    original_execute = database.Database._execute

    async def run(self: database.Database, fn: Any) -> Any:
        counts[fn.__qualname__.split(".<locals>")[0]] += 1
        return await original_run(self, fn)

    def execute(self: database.Database, conn: Any, batch: list[Any]) -> None:
        start = time.perf_counter()
        original_execute(self, conn, batch)
        batches.append((len(batch), time.perf_counter() - start))

    database.Database.run = run  # type: ignore[method-assign]
    database.Database._execute = execute  # type: ignore[method-assign]


async def noop() -> None:
    return None


class Seq(Loop):
    name = "seq"

    async def run(self, event: Event, step: Step) -> Any:
        for i in range(int(event.body["n"])):
            await step.do(f"s{i}", noop)
        return None


async def main(runs: int, steps: int, db: str) -> float:
    async with App([Seq], f"sqlite:///{db}") as app:
        warm = await app.trigger("seq", {"n": 5})
        await app.wait_for_run(warm.id)
        counts.clear()
        batches.clear()
        start = time.perf_counter()
        trig = await asyncio.gather(*(app.trigger("seq", {"n": steps}) for _ in range(runs)))
        await asyncio.gather(*(app.wait_for_run(r.id) for r in trig))
        return time.perf_counter() - start


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "b"
    runs, steps = (1, 1000) if which == "a" else (200, 10)
    instrument()
    with tempfile.TemporaryDirectory() as folder:
        wall = asyncio.run(main(runs, steps, str(Path(folder) / "ops.db")))
    total = sum(counts.values())
    busy = sum(t for _, t in batches)
    print(f"({which}) {runs} x {steps} steps: {wall * 1e3:.0f} ms, {runs * steps / wall:,.0f} "
          f"steps/s; {total} db ops ({total / (runs * steps):.2f} per step), "
          f"{len(batches)} commits")  # fmt: skip
    for name, n in counts.most_common():
        print(f"  {n:6}  {name}")
    print(f"SQLite thread inside transactions {busy * 1e3:.0f} ms = {busy / wall:.0%} of wall; "
          f"mean batch {sum(n for n, _ in batches) / len(batches):.1f} ops, "
          f"mean transaction {busy / len(batches) * 1e6:.0f} us")  # fmt: skip
