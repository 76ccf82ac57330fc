"""Where one sequential step's microseconds go (workload (a)), by timestamps.

Run it: ``.venv/bin/python bench/trace_step.py [--steps 1000]``. Wraps (in this process
only; nothing under src/ changes) ``Database.run``, ``Database._execute`` and the
delivery callback to timestamp each database round trip, then splits the wall time of
one run of sequential trivial steps into:

* ``loop -> db thread``: from ``queue.put`` until the SQLite thread starts the batch;
* ``transaction``: BEGIN IMMEDIATE .. COMMIT (the fsync lives here);
* ``db thread -> loop``: from COMMIT returning until the awaiting coroutine resumes;
* ``event loop work``: from that resume until the next ``queue.put`` (engine + step code).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pulseloop import App, Event, Loop, Step
from pulseloop.store.sqlite import database

perf = time.perf_counter
trips: list[dict[str, float]] = []


def instrument() -> None:
    original_run = database.Database.run
    original_execute = database.Database._execute

    async def run(self: database.Database, fn: Any) -> Any:
        trip: dict[str, float] = {"put": perf()}

        def op(conn: Any) -> Any:
            trip.setdefault("op", perf())
            return fn(conn)

        op.trip = trip  # type: ignore[attr-defined]
        try:
            return await original_run(self, op)
        finally:
            trip["resumed"] = perf()
            trips.append(trip)

    def execute(self: database.Database, conn: Any, batch: list[Any]) -> None:
        begin = perf()
        # _execute commits and then delivers; time the commit by wrapping conn.execute
        real = conn

        class Conn:
            def execute(self, sql: str, *a: Any) -> Any:
                result = real.execute(sql, *a)
                if sql == "COMMIT":
                    end = perf()
                    for fn, _, _ in batch:
                        t = getattr(fn, "trip", None)
                        if t is not None:
                            t["committed"] = end
                return result

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        for fn, _, _ in batch:
            t = getattr(fn, "trip", None)
            if t is not None:
                t["begin"] = begin
                t["batch"] = len(batch)
        original_execute(self, Conn(), batch)  # type: ignore[arg-type]

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


async def main(steps: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with App([Seq], f"sqlite:///{Path(folder) / 't.db'}") as app:
            warm = await app.trigger("seq", {"n": 10})
            await app.wait_for_run(warm.id)
            trips.clear()
            start = perf()
            run = await app.trigger("seq", {"n": steps})
            await app.wait_for_run(run.id)
            wall = perf() - start
    done = [t for t in trips if {"put", "begin", "committed", "resumed"} <= t.keys()]
    done.sort(key=lambda t: t["put"])
    parts: dict[str, list[float]] = {
        "loop -> db thread (queue wake)": [],
        "transaction (BEGIN..COMMIT)": [],
        "db thread -> loop (deliver, wake)": [],
        "event loop work until next put": [],
    }
    for prev, cur in itertools.pairwise(done):
        parts["event loop work until next put"].append(cur["put"] - prev["resumed"])
    for t in done:
        parts["loop -> db thread (queue wake)"].append(t["begin"] - t["put"])
        parts["transaction (BEGIN..COMMIT)"].append(t["committed"] - t["begin"])
        parts["db thread -> loop (deliver, wake)"].append(t["resumed"] - t["committed"])
    print(f"{steps} steps in {wall * 1e3:.0f} ms = {wall / steps * 1e6:.0f} us/step (wall, "
          f"instrumented); {len(done)} database round trips")  # fmt: skip
    print(f"{'part':36} {'median us':>10} {'mean us':>9} {'p90 us':>8} {'share':>6}")
    total = sum(statistics.fmean(v) for v in parts.values() if v)
    for name, values in parts.items():
        if not values:
            continue
        values.sort()
        mean = statistics.fmean(values)
        print(f"{name:36} {statistics.median(values) * 1e6:10.1f} {mean * 1e6:9.1f} "
              f"{values[int(0.9 * len(values))] * 1e6:8.1f} {mean / total:6.0%}")  # fmt: skip


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    instrument()
    asyncio.run(main(ap.parse_args().steps))
