"""Timers and signals: due timers fire exactly once however many workers race; a
signal is never missed by a run that parks at the same instant."""

from __future__ import annotations

import asyncio

from pulseloop.store import Store
from pulseloop.store.base import Lease


async def _parked(store: Store, n: int, wake_at: float | None, keys: list[str]) -> None:
    for i in range(n):
        await store.create_run("org", f"r{i:03d}", "loop", "null", float(i))
    claimed = await store.claim_runs("org", "w", ["loop"], n, 100.0, 30.0, 1.0)
    for run in claimed:
        assert await store.park_run(Lease(run.id, "w"), wake_at, keys, 1.0) == "waiting"


async def test_due_timers_fire_once_when_two_stores_race(store: Store, second_store: Store) -> None:
    await _parked(store, 40, 50.0, [])
    fired, next_at = await store.fire_timers("org", 10.0)
    assert (fired, next_at) == (0, 50.0)
    results = await asyncio.gather(
        *(s.fire_timers("org", 60.0) for s in (store, second_store) for _ in range(3))
    )
    assert sum(count for count, _ in results) == 40  # each run re-queued once
    assert all(next_at is None for _, next_at in results[-2:])
    queued = await store.list_runs("org", status="queued", limit=100)
    assert len(queued) == 40


async def test_scan_expiry_fires_once_when_two_stores_race(
    store: Store, second_store: Store
) -> None:
    await _parked(store, 10, None, ["scan:s0"])
    for i in range(10):
        await store.create_scan("org", f"r{i:03d}", "make", f"s{i}", f"h{i}", "{}", 1.0, 20.0)
    results = await asyncio.gather(
        store.fire_timers("org", 30.0), second_store.fire_timers("org", 30.0)
    )
    assert sum(count for count, _ in results) == 10
    scan = await store.get_scan("org", "s0")
    assert scan is not None and scan.status == "expired"
    run = await store.get_run("org", "r000")
    assert run is not None and run.status == "queued"  # woken by its scan's expiry


async def test_a_signal_racing_a_park_is_never_missed(store: Store, second_store: Store) -> None:
    n = 30
    for i in range(n):
        await store.create_run("org", f"r{i:03d}", "loop", "null", float(i))
    claimed = await store.claim_runs("org", "w", ["loop"], n, 100.0, 30.0, 1.0)

    async def park(run_id: str) -> str:
        return await store.park_run(Lease(run_id, "w"), None, ["event:go"], 2.0)

    async def signal(run_id: str) -> bool:
        return await second_store.send_signal("org", run_id, "event:go", "1", 2.0)

    await asyncio.gather(*(f(r.id) for r in claimed for f in (park, signal)))
    for run in claimed:  # whichever committed first, the run ends up runnable
        after = await store.get_run("org", run.id)
        assert after is not None and after.status == "queued", run.id
