"""Worker liveness on every backend: a killed worker's runs and analysis jobs move at once,
a live worker's never.

A real process opens a store, registers a worker, claims a run with a lease of an hour
and an analysis job, and is SIGKILLed. While it lives, another store finds nobody dead;
once it is killed, that store proves it dead (SQLite: its flock is free; PostgreSQL: its
session's advisory lock is free) and queues the run again, long before the lease ends.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from pulseloop.store import Store

_HOLDER = """
import asyncio, sys, time
from pulseloop.store import open_store

async def main(url: str) -> None:
    store = open_store(url, for_worker=True)
    await store.open()
    await store.register_worker("w-doomed")
    (run,) = await store.claim_runs("org", "w-doomed", ["loop"], 1, time.time(), 3600.0, 1.0)
    (job,) = await store.claim_analyses("w-doomed", 1, time.time(), 3600.0)
    print("held", run.id, job.scan_id, flush=True)
    await asyncio.sleep(600)

asyncio.run(main(sys.argv[1]))
"""


async def test_a_killed_worker_is_proven_dead_and_a_live_one_is_not(
    store: Store, db_url: str
) -> None:
    await store.register_worker("w-alive")
    await store.create_run("org", "r1", "loop", "null", 1.0)
    await store.create_scan("org", "r1", "scan", "s1", "h1", "{}", 1.0, time.time() + 3600)
    assert await store.accept_upload("h1", ("pending",), "trace", "{}", 2.0) is not None

    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLDER, db_url, stdout=asyncio.subprocess.PIPE
    )
    assert holder.stdout is not None
    line = (await holder.stdout.readline()).decode()
    try:
        assert line.split() == ["held", "r1", "s1"], line
        assert await store.reclaim_dead_workers(3.0) == 0  # alive: nothing moves
        assert (await store.get_run("org", "r1")).status == "running"  # type: ignore[union-attr]
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        await holder.wait()

    for _ in range(200):  # the server notices the dead session within moments
        if moved := await store.reclaim_dead_workers(4.0):
            break
        await asyncio.sleep(0.05)
    assert moved == 1
    run = await store.get_run("org", "r1")
    assert run is not None and run.status == "queued"
    (job,) = await store.claim_analyses("w-alive", 1, time.time(), 60.0)  # lease hour ignored
    assert job.scan_id == "s1"
    (claimed,) = await store.claim_runs("org", "w-alive", ["loop"], 1, time.time(), 60.0, 5.0)
    assert claimed.id == "r1"
    assert await store.reclaim_dead_workers(6.0) == 0  # found once
    await store.unregister_worker("w-alive")
