"""Should the ``/s/`` token bucket be shared through the database? A measurement.

Run it: ``.venv/bin/python bench/scan_rate_limit.py`` (``--backend postgres`` for a
throwaway PostgreSQL server on 127.0.0.1; ``--requests N``).

What it times, each on the same fresh database:

* **in-process bucket**: :meth:`pulseloop.server.limits.RateLimit.take`, what every ``/s/``
  request pays today;
* **cheapest /s/ request**: ``GET /s/<unknown token>`` through the whole ASGI app (httpx's
  ASGI transport, no sockets): middlewares, the token lookup, the 404. Every real ``/s/``
  request does at least this;
* **shared bucket**: the candidate a shared limit needs, one upsert per request that
  refills and spends a token in one statement (``INSERT ... ON CONFLICT DO UPDATE ...
  RETURNING``), in its own transaction through the store's own path (SQLite: the database
  thread, group commit, ``synchronous=FULL``; PostgreSQL: a pooled transaction). Timed one
  at a time (latency) and with 32 in flight (throughput).

Prints one table; docs/deploy.md quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from backends import Databases

from pulseloop import App
from pulseloop.server.app import create_app
from pulseloop.server.limits import RateLimit

RATE, BURST = 2.0, 60
_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_buckets "
    "(address text PRIMARY KEY, tokens double precision NOT NULL, at double precision NOT NULL)"
)
_SQLITE_TAKE = (
    "INSERT INTO bench_buckets AS b (address, tokens, at) VALUES (?, ?, ?) "
    "ON CONFLICT (address) DO UPDATE SET "
    "tokens = min(?, b.tokens + (excluded.at - b.at) * ?) - 1, at = excluded.at "
    "WHERE min(?, b.tokens + (excluded.at - b.at) * ?) >= 1 RETURNING tokens"
)
_PG_TAKE = _SQLITE_TAKE.replace("?", "%s").replace("min(", "LEAST(")


async def timed(n: int, inflight: int, call: Callable[[int], Awaitable[Any]]) -> list[float]:
    """Latencies (us) of ``n`` calls, ``inflight`` at a time; also returns wall time last."""
    latencies: list[float] = []
    counter = iter(range(n))

    async def lane() -> None:
        for i in counter:
            start = time.perf_counter()
            await call(i)
            latencies.append((time.perf_counter() - start) * 1e6)

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(inflight)))
    latencies.append((time.perf_counter() - start) * 1e6)
    return latencies


def row(name: str, samples: list[float]) -> str:
    wall_us, lat = samples[-1], sorted(samples[:-1])
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    per_s = len(lat) / (wall_us / 1e6)
    return f"| {name} | {p50:,.1f} | {p99:,.1f} | {per_s:,.0f} |"


async def measure(url: str, n: int) -> list[str]:
    lines = ["| what | p50 us | p99 us | per s |", "|---|---:|---:|---:|"]
    bucket = RateLimit(lambda *a: None, rate_per_s=RATE, burst=BURST)  # type: ignore[arg-type]

    async def take_memory(i: int) -> None:
        bucket.take(f"10.0.{i % 250}.{i % 199}")

    lines.append(row("in-process bucket (today)", await timed(n * 10, 1, take_memory)))
    async with App([], url, worker=False) as app:
        asgi = create_app(app, scan_rate_per_s=1e9, scan_burst=10**9)
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:

            async def page(i: int) -> None:
                response = await c.get(f"/s/no-such-token-{i}")
                assert response.status_code == 404

            lines.append(row("cheapest /s/ request (404)", await timed(n, 1, page)))
        store: Any = app.store
        postgres = url.startswith("postgresql")

        if postgres:

            async def take_db(i: int) -> None:
                now, address = time.time(), f"10.0.{i % 250}.{i % 199}"

                async def op(conn: Any) -> None:
                    await conn.execute(
                        _PG_TAKE, (address, BURST - 1, now, BURST, RATE, BURST, RATE)
                    )

                await store._tx(op)

            await store._tx(lambda conn: conn.execute(_TABLE))
        else:

            async def take_db(i: int) -> None:
                now, address = time.time(), f"10.0.{i % 250}.{i % 199}"
                params = (address, BURST - 1, now, BURST, RATE, BURST, RATE)
                await store._db.run(lambda conn: conn.execute(_SQLITE_TAKE, params).fetchall())

            await store._db.run(lambda conn: conn.execute(_TABLE))
        lines.append(row("shared bucket, 1 in flight", await timed(n, 1, take_db)))
        lines.append(row("shared bucket, 32 in flight", await timed(n, 32, take_db)))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    databases = Databases(args.backend)
    try:
        lines = asyncio.run(measure(databases.url("rate_limit"), args.requests))
    finally:
        databases.close()
    print(f"{args.backend}: {databases.describe()}, {args.requests} requests per row")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
