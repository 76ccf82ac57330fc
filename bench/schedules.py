"""Scheduler lag: from a tick's time to its run starting, with 1,000 schedules.

Run it: ``.venv/bin/python bench/schedules.py`` (``--backend postgres`` for PostgreSQL,
``--help`` for the sizes). Real time, no fake clock: it waits for real minute boundaries,
so each scenario takes ``--ticks`` minutes or a little more.

Scenarios, each on a fresh database with one in-process worker (concurrency 100):

burst  1,000 schedules all on ``* * * * *``: every minute 1,000 ticks fall due at once
       (the worst case: the lag of the last run is the time to fire and claim them all).
spread 1,000 schedules on ``M * * * *`` with M = i mod 60: hourly per-patient schedules,
       16-17 due each minute, 983 idle ones in the table.

Lag = the run's ``started_at`` (when a worker claimed it) minus its tick time (from the
tick's run id); "fired" is its ``created_at`` minus the tick (the run inserted, before any
worker claimed it), which separates the scheduler from the claim queue. Only ticks after
every schedule was created are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from backends import Databases, query

from pulseloop import App, Event, Loop, Step


class Ping(Loop):
    """One trivial step: the run's start is what is measured."""

    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("ping", lambda: 1)


SCENARIOS: dict[str, Callable[[int], str]] = {
    "burst": lambda i: "* * * * *",
    "spread": lambda i: f"{i % 60} * * * *",
}


def _tick_of(run_id: str) -> float:
    stamp = run_id.rsplit(":", 1)[1]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


async def measure(
    url: str, n: int, ticks: int, cron_of: Callable[[int], str]
) -> list[tuple[float, float]]:
    """(fired, started) lags in seconds of every run whose tick fell in the ``ticks``
    minutes measured."""
    async with App([Ping], url) as app:
        for i in range(n):
            await app.schedules.create("ping", cron=cron_of(i), id=f"s{i:04d}")
        first = math.ceil(time.time() / 60) * 60  # the first tick after all were created
        last = first + (ticks - 1) * 60
        expected = sum(
            1 for i in range(n) for t in range(ticks)
            if _due(cron_of(i), first + 60 * t)
        )  # fmt: skip
        while True:
            await asyncio.sleep(1.0)
            if time.time() < last + 1:
                continue
            counted = _lags(url, first, last)
            if len(counted) >= expected:
                return counted


def _due(cron: str, at: float) -> bool:
    minute = cron.split()[0]
    return minute == "*" or int(minute) == datetime.fromtimestamp(at, UTC).minute


def _lags(url: str, first: float, last: float) -> list[tuple[float, float]]:
    rows = query(url, "SELECT id, created_at, started_at FROM runs WHERE started_at IS NOT NULL")
    return [
        (float(created) - _tick_of(str(run_id)), float(started) - _tick_of(str(run_id)))
        for run_id, created, started in rows
        if first <= _tick_of(str(run_id)) <= last
    ]


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Run each scenario and print p50 / p99 / max lag."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=2, help="minutes measured per scenario")
    parser.add_argument("--only", choices=sorted(SCENARIOS), default=None)
    args = parser.parse_args()
    databases = Databases(args.backend)
    try:
        print(f"scheduler lag, {args.schedules} schedules, {databases.describe()}")
        print(
            f"{'scenario':<8} {'runs':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
            f"   {'fired p50':>9} {'fired p99':>9}"
        )
        for name, cron_of in SCENARIOS.items():
            if args.only and name != args.only:
                continue
            pairs = asyncio.run(
                measure(databases.url(f"sched_{name}"), args.schedules, args.ticks, cron_of)
            )
            fired = [f for f, _ in pairs]
            lags = [s for _, s in pairs]
            print(
                f"{name:<8} {len(lags):>6} {_ms(lags, 0.5):>8.1f} {_ms(lags, 0.99):>8.1f} "
                f"{1000 * max(lags):>8.1f}   {_ms(fired, 0.5):>9.1f} {_ms(fired, 0.99):>9.1f}"
                f"   (mean {1000 * statistics.mean(lags):.1f})",
                flush=True,
            )
    finally:
        databases.close()


if __name__ == "__main__":
    sys.exit(main())
