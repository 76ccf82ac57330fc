"""Draining a queue with N ``pulseloop worker`` processes: runs/s for N = 1, 2, 4.

For each N, on a fresh database: start N workers and wait until each says it is ready;
stop them (SIGSTOP) so none claims early; queue the runs through ``App.trigger``; wake
them all at one instant (SIGCONT, ``t0``) and wait until every run completed. The
figure is runs / (last run's ``updated_at`` - ``t0``): worker start-up and queueing are
outside it, and the workers start draining together. Runs/s must grow with N.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from backends import Databases, query

from pulseloop import App

LOOP_FILE = Path(__file__).with_name("drain_loop.py")
TIMEOUT_S = 600.0


async def _worker(url: str, folder: Path, n: int) -> asyncio.subprocess.Process:
    errors = folder / f"drain-worker-{n}.stderr"
    env = {k: v for k, v in os.environ.items() if k != "PULSELOOP_DATABASE_URL"}
    with errors.open("w") as stderr:  # a file, not a pipe: nobody drains it
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pulseloop.cli.main", "worker", str(LOOP_FILE), "--db", url,
            stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env,
        )  # fmt: skip
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    if b"ready" not in line:
        await proc.wait()
        raise RuntimeError(f"worker did not start: {line!r}; {errors.read_text()[-2000:]}")
    return proc


async def drain_once(url: str, folder: Path, runs: int, workers: int) -> dict[str, Any]:
    """Queue ``runs`` one-step runs, drain them with ``workers`` processes; the figures."""
    async with App([], url, worker=False) as app:  # migrates before the workers start
        procs = list(await asyncio.gather(*(_worker(url, folder, n) for n in range(workers))))
        try:
            for proc in procs:
                os.kill(proc.pid, signal.SIGSTOP)
            queued_at = time.perf_counter()
            for lo in range(0, runs, 1000):
                batch = range(lo, min(runs, lo + 1000))
                await asyncio.gather(*(app.trigger("one", None, id=f"q{i:06d}") for i in batch))
            queue_s = time.perf_counter() - queued_at
            t0 = time.time()
            for proc in procs:
                os.kill(proc.pid, signal.SIGCONT)
            deadline = time.monotonic() + TIMEOUT_S
            while True:
                ((done, last),) = query(
                    url, "SELECT count(*), max(updated_at) FROM runs WHERE status = 'completed'"
                )
                if done == runs or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
        finally:
            for proc in procs:
                if proc.returncode is None:
                    os.kill(proc.pid, signal.SIGCONT)
                    os.kill(proc.pid, signal.SIGTERM)
                await proc.wait()
    if done != runs:
        return {"error": f"only {done}/{runs} completed in {TIMEOUT_S:.0f} s"}
    drain_s = float(last) - t0
    return {
        "workers": workers,
        "runs": runs,
        "drain_s": drain_s,
        "runs_per_s": runs / drain_s,
        "queue_runs_per_s": runs / queue_s,
    }


def drain_all(dbs: Databases, runs: int, worker_counts: list[int]) -> dict[int, dict[str, Any]]:
    """``drain_once`` for each worker count, each on a fresh database."""
    out: dict[int, dict[str, Any]] = {}
    for n in worker_counts:
        url = dbs.url(f"f_drain_{n}")
        try:
            out[n] = asyncio.run(drain_once(url, Path(dbs.tmp.name), runs, n))
        except Exception as exc:  # a part that fails is reported, the others still run
            out[n] = {"error": f"{type(exc).__name__}: {exc}"}
    return out
