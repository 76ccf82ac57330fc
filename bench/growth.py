"""Does pulseloop stay as fast with a year of history as on an empty database?

Run it: ``.venv/bin/python bench/growth.py`` (``--quick`` for a smoke run: 10,000 step
rows). One SQLite database is filled with finished runs of 10 steps each, to 100,000 and
then 1,000,000 step rows (rows written directly, as a year of a clinic's runs would have
left them). At each level every probe runs on the filled database and on a fresh empty one
beside it, alternately, and the table prints both and their ratio (filled / empty: 1.00 is
flat; for steps/s higher is better, so the ratio is empty / filled there too, < 1 means slower).

Probes:

* sequential step: one run of 300 trivial steps, microseconds per step (App + worker);
* fed runs: 200 runs x 10 steps triggered together, steps/s;
* claim: an idle worker's claim on an empty queue, ms (what every poll costs);
* /metrics: one ``stats`` read (totals + latencies since the last scrape), ms;
* list page: the newest 50 runs, and the newest 50 failed ones, ms;
* run detail: one old run's timeline, ms.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pulseloop import App, Event, Loop, Step
from pulseloop.store.sqlite.store import SqliteStore

ORG = "default"
STEPS_PER_RUN = 10


async def _noop() -> None:
    return None


class Seq(Loop):
    """N trivial steps."""

    name = "seq"

    async def run(self, event: Event, step: Step) -> Any:
        for i in range(int(event.body["n"])):
            await step.do(f"s{i}", _noop)
        return event.body["n"]


def fill(path: Path, start_run: int, runs: int, failed_every: int = 50) -> None:
    """Append ``runs`` finished runs of 10 steps (every ``failed_every``-th failed)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # filling only: the probes run synced
    chunk = 10_000
    base = time.time() - 365 * 86400
    for lo in range(start_run, start_run + runs, chunk):
        hi = min(lo + chunk, start_run + runs)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO runs (org, id, loop, status, input, output, history_len, created_at, "
            "updated_at, started_at, finished_at, run_key) VALUES (?, ?, 'seq', ?, "
            "'{\"n\": 10}', '10', 1, ?, ?, ?, ?, ?)",
            [
                (ORG, key, "failed" if i % failed_every == 0 else "completed", t, t, t, t + 1, key)
                for i in range(lo, hi)
                for t, key in [(base + i * 60.0, f"h{i:08d}")]
            ],
        )
        conn.executemany(
            "INSERT INTO steps (run_id, name, seq, kind, status, output, attempts, "
            "started_at, finished_at, version) VALUES (?, ?, ?, 'do', 'completed', 'null', 1, "
            "?, ?, 'v1')",
            [
                (f"h{i:08d}", f"s{k}", k, base + i * 60.0 + k * 0.01, base + i * 60.0 + k * 0.01)
                for i in range(lo, hi)
                for k in range(STEPS_PER_RUN)
            ],
        )
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def _timed_ms(fn: Callable[[], Awaitable[object]], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def probe(path: Path, old_run: str | None, quick: bool) -> dict[str, float]:
    """Every probe once on the database at ``path``."""
    url = f"sqlite:///{path}"
    out: dict[str, float] = {}
    async with App([Seq], url) as app:
        await app.wait_for_run((await app.trigger("seq", {"n": 5})).id)  # warm-up
        n = 100 if quick else 300
        start = time.perf_counter()
        await app.wait_for_run((await app.trigger("seq", {"n": n})).id)
        out["sequential step (us)"] = (time.perf_counter() - start) / n * 1e6
        runs = 50 if quick else 200
        start = time.perf_counter()
        triggered = await asyncio.gather(*(app.trigger("seq", {"n": 10}) for _ in range(runs)))
        await asyncio.gather(*(app.wait_for_run(r.id) for r in triggered))
        out["fed runs (steps/s)"] = runs * 10 / (time.perf_counter() - start)

    store = SqliteStore(str(path))
    await store.open()
    try:
        now = time.time()
        reps = 50 if quick else 200
        out["claim, idle (ms)"] = await _timed_ms(
            lambda: store.claim_runs(ORG, "probe", ["seq"], 10, now, 30.0, now), reps
        )
        # a scrape reads totals (counters) and the steps finished since the last scrape:
        # none here, so this is the part of a scrape that could grow with history
        out["/metrics (ms)"] = await _timed_ms(lambda: store.stats(time.time()), reps)
        out["list page (ms)"] = await _timed_ms(lambda: store.list_runs(ORG, limit=50), reps)
        out["failed page (ms)"] = await _timed_ms(
            lambda: store.list_runs(ORG, status="failed", limit=50), reps
        )
        if old_run is not None:
            out["run detail (ms)"] = await _timed_ms(
                lambda: store.get_run_detail(ORG, old_run), reps
            )
        out["timers (ms)"] = await _timed_ms(lambda: store.fire_timers(ORG, now), reps)
    finally:
        await store.close()
    return out


async def paired(filled: Path, folder: Path, level: int, quick: bool) -> list[str]:
    """Probe the filled database and an empty one alternately; one table row per probe."""
    repeats = 1 if quick else 3
    filled_runs: list[dict[str, float]] = []
    empty_runs: list[dict[str, float]] = []
    for r in range(repeats):
        empty = folder / f"empty-{level}-{r}.db"
        await _create(empty)
        fill(empty, 0, 60, failed_every=1)  # a full page of failed runs, as the filled one has
        empty_runs.append(await probe(empty, "h00000000", quick))
        filled_runs.append(await probe(filled, "h00000000", quick))
    lines = []
    for name in filled_runs[0]:
        f = statistics.median(x[name] for x in filled_runs)
        e = statistics.median(x[name] for x in empty_runs)
        ratio = e / f if "steps/s" in name else f / e
        lines.append(f"| {level:>9,} | {name:<22} | {e:>10.3f} | {f:>10.3f} | {ratio:>5.2f} |")
    return lines


async def _create(path: Path) -> None:
    store = SqliteStore(str(path))
    await store.open()
    await store.ensure_org(ORG, time.time())
    await store.close()


async def main(quick: bool) -> None:
    levels = [0, 10_000] if quick else [0, 100_000, 1_000_000]
    with tempfile.TemporaryDirectory(prefix="pulseloop-growth-") as tmp:
        folder = Path(tmp)
        filled = folder / "filled.db"
        await _create(filled)
        print("| step rows | probe                  |      empty |     filled | ratio |")
        print("|---|---|---|---|---|")
        have_runs = 0
        for level in levels:
            want_runs = level // STEPS_PER_RUN
            if want_runs > have_runs:
                start = time.perf_counter()
                fill(filled, have_runs, want_runs - have_runs)
                print(
                    f"(filled to {level:,} step rows in {time.perf_counter() - start:.1f} s)",
                    flush=True,
                )
                have_runs = want_runs
            if have_runs == 0:
                fill(filled, 0, 1)
                have_runs = 1
            for line in await paired(filled, folder, level, quick):
                print(line, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 step rows, fewer repeats")
    asyncio.run(main(parser.parse_args().quick))
