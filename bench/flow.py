"""Claim throughput with 10,000 queued runs, under a per-key concurrency limit and without.

Run it: ``.venv/bin/python bench/flow.py`` (``--backend postgres`` for PostgreSQL,
``--help`` for the sizes). It drives the store directly, as a worker's claim loop does:
claim up to ``--batch`` runs, finish each one (which frees its key's slot), claim again,
until every queued run has been claimed. Scenarios, each on a fresh database holding
``--runs`` queued runs:

none     no limit: the claim path every unkeyed loop takes.
keys1k   limit 1 per key, 1,000 keys (10 runs queued behind each): a claim takes one run
         from each of up to ``batch`` keys with room.
keys10   limit 1 per key, 10 keys (1,000 behind each): at most 10 runs can hold a slot, so
         a claim takes at most 10; what it costs with 9,990 runs waiting behind full keys.

With ``--analyze`` (the default) the tables' statistics are refreshed after the runs are
queued, as autovacuum does on a database that has been running: on a brand-new database
PostgreSQL plans the claim's read of ``concurrency_slots`` as a bitmap scan that visits
every dead row version (measured below with ``--no-analyze``).

Printed per scenario: claim calls, p50 / p99 time of one claim call, runs claimed per
second of claim time (the claim's own cost), and runs per second of the whole loop.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time
from collections.abc import Callable

from backends import Databases

from pulseloop.store import Store, open_store
from pulseloop.store.base import Lease

ORG = "bench"
SCENARIOS: dict[str, Callable[[int], str | None]] = {
    "none": lambda n: None,
    "keys1k": lambda n: f"patient-{n % 1000}",
    "keys10": lambda n: f"patient-{n % 10}",
}


async def _fill(store: Store, runs: int, key_of: Callable[[int], str | None]) -> None:
    async def one(n: int) -> None:
        key = key_of(n)
        if key is None:  # the call as it was before flow control (runs against older code)
            await store.create_run(ORG, f"r{n:06d}", "loop", "{}", float(n))
        else:
            await store.create_run(
                ORG, f"r{n:06d}", "loop", "{}", float(n), flow_key=key, flow_limit=1
            )

    for start in range(0, runs, 500):
        await asyncio.gather(*(one(n) for n in range(start, min(runs, start + 500))))


def _analyze(url: str) -> None:
    """Refresh the planner's statistics (what autovacuum's analyze does in a while)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("ANALYZE")
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


async def measure(
    url: str, runs: int, batch: int, key_of: Callable[[int], str | None], analyze: bool
) -> tuple[list[float], float]:
    """(seconds per claim call, seconds for the whole claim-and-finish loop)."""
    store = open_store(url, for_worker=True)
    await store.open()
    try:
        await store.ensure_org(ORG, 0.0)
        await _fill(store, runs, key_of)
        if analyze:
            await asyncio.to_thread(_analyze, url)
        claims: list[float] = []
        claimed = 0
        began = time.perf_counter()
        while claimed < runs:
            t0 = time.perf_counter()
            got = await store.claim_runs(ORG, "w1", ["loop"], batch, time.time(), 60.0, 1e6)
            claims.append(time.perf_counter() - t0)
            if not got:
                raise SystemExit(f"a claim found nothing with {runs - claimed} runs left")
            claimed += len(got)
            await asyncio.gather(
                *(store.finish_run(Lease(r.key, "w1", ORG), "completed", "1", None, 1e6)
                  for r in got)
            )  # fmt: skip
        return claims, time.perf_counter() - began
    finally:
        await store.close()


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Run each scenario and print its claim costs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--only", choices=sorted(SCENARIOS), default=None)
    parser.add_argument("--analyze", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    databases = Databases(args.backend)
    try:
        stats = "statistics analyzed" if args.analyze else "no ANALYZE"
        print(
            f"claims of {args.runs} queued runs, batch {args.batch}, {stats}, "
            f"{databases.describe()}"
        )
        print(
            f"{'scenario':<8} {'claims':>7} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'claimed/s of claim time':>24} {'runs/s overall':>15}"
        )
        for name, key_of in SCENARIOS.items():
            if args.only and name != args.only:
                continue
            claims, total = asyncio.run(
                measure(databases.url(f"flow_{name}"), args.runs, args.batch, key_of, args.analyze)
            )
            print(
                f"{name:<8} {len(claims):>7} {_ms(claims, 0.5):>8.2f} {_ms(claims, 0.99):>8.2f} "
                f"{args.runs / sum(claims):>24,.0f} {args.runs / total:>15,.0f}",
                flush=True,
            )
    finally:
        databases.close()


if __name__ == "__main__":
    sys.exit(main())
