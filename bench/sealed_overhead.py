"""The encrypting store's own CPU per step, without a database: what sealing costs beyond SQL.

Run it: ``.venv/bin/python bench/sealed_overhead.py [--runs 500] [--repeats 7]``. Drives
:class:`~pulseloop.store.sealed.EncryptedStore` over a backend that keeps records in
dicts (no SQL, no threads) with bench/engine.py (b)'s call pattern per run: trigger,
claim, 10 steps recorded, finish, 8 polls of the run (what ``wait_for_run`` does while
it waits), the run's detail. Prints process CPU per step for the bare backend and with
the encrypting store around it (best of ``--repeats``), and the difference: the wrapper's
Python plus AES-GCM. Being CPU-only and single-threaded, it holds still on a loaded
machine where bench/engine.py's plain-vs-sealed figures swing by tens of percent.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pulseloop.store.base import Lease, RunDetail, RunRecord, StepRecord
from pulseloop.store.sealed.master import MasterKey
from pulseloop.store.sealed.store import EncryptedStore
from pulseloop.store.sqlite.store import SqliteStore

STEPS, POLLS = 10, 8


class DictBackend:
    """The backend calls the pattern makes, on dicts; every read returns a fresh record,
    as the real backends build one from its row. The data keys (read at open, made at
    the first write, never on the measured path) live in a real SQLite file."""

    def __init__(self, keys_db: str) -> None:
        self.runs: dict[str, RunRecord] = {}
        self.steps: dict[str, list[StepRecord]] = {}
        self.keys = SqliteStore(keys_db)

    async def open(self) -> None:
        await self.keys.open()

    async def close(self) -> None:
        await self.keys.close()

    async def payload_sql(
        self, statements: Sequence[tuple[str, tuple[Any, ...]]]
    ) -> list[list[tuple[Any, ...]]]:
        return await self.keys.payload_sql(statements)

    async def create_run(
        self, org: str, run_id: str, loop: str, input_json: str, now: float, *more: Any
    ) -> tuple[RunRecord, bool]:
        run = RunRecord(org, run_id, loop, "queued", input_json, None, None, 0, 0, now, now,
                        None, None, None, run_id)  # fmt: skip
        self.runs[run_id], self.steps[run_id] = run, []
        return dataclasses.replace(run), True

    async def claim_runs(
        self,
        org: str,
        worker: str,
        loops: list[str],
        limit: int,
        lease_now: float,
        lease_s: float,
        now: float,
        run_id: str | None = None,
    ) -> list[RunRecord]:
        return [] if run_id is None else [dataclasses.replace(self.runs[run_id])]

    async def record_step(self, lease: Lease, step: StepRecord, consume: Any = None) -> str:
        self.steps[lease.run_id].append(step)
        return "running"

    async def finish_run(
        self, lease: Lease, status: str, output: str | None, error: Any, now: float
    ) -> None:
        run = self.runs[lease.run_id]
        self.runs[lease.run_id] = dataclasses.replace(
            run, status=status, output=output, error=error, finished_at=now
        )

    async def get_run(self, org: str, run_id: str) -> RunRecord:
        return dataclasses.replace(self.runs[run_id])

    async def get_run_detail(self, org: str, run_id: str) -> RunDetail:
        steps = [dataclasses.replace(s) for s in self.steps[run_id]]
        return RunDetail(dataclasses.replace(self.runs[run_id]), steps, [], [])


async def one_pass(store: Any, runs: int) -> None:
    for i in range(runs):
        run_id = f"run-{i:06d}-{time.perf_counter_ns()}"
        await store.create_run("org", run_id, "seq", '{"n": 10}', 1.0)
        (run,) = await store.claim_runs("org", "w", ["seq"], 1, 1.0, 30.0, 1.0, run_id)
        lease = Lease(run.key, "w", "org")
        for k in range(STEPS):
            step = StepRecord(run.key, f"s{k}", k, "do", "completed", "null", None, 1, 1, 2, "v")
            await store.record_step(lease, step)
        await store.finish_run(lease, "completed", "10", None, 2.0)
        for _ in range(POLLS):
            await store.get_run("org", run_id)
        await store.get_run_detail("org", run_id)


async def cpu_us_per_step(sealed: bool, runs: int, repeats: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        backend = DictBackend(str(Path(folder) / "keys.db"))
        master = MasterKey(b"m" * 32, "bench")
        store: Any = EncryptedStore(backend, master) if sealed else backend  # type: ignore[arg-type]
        await store.open()
        try:
            best = float("inf")
            for _ in range(repeats):
                gc.collect()
                start = time.process_time()
                await one_pass(store, runs)
                best = min(best, (time.process_time() - start) / (runs * STEPS) * 1e6)
        finally:
            await store.close()
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    plain = asyncio.run(cpu_us_per_step(False, args.runs, args.repeats))
    sealed = asyncio.run(cpu_us_per_step(True, args.runs, args.repeats))
    print(f"CPU per step: bare backend {plain:.2f} us, sealed {sealed:.2f} us, "
          f"sealing costs {sealed - plain:.2f} us")  # fmt: skip


if __name__ == "__main__":
    main()
