"""``run_status``: what a waiter polls, the same answer from every backend and through the
encrypting store (a status is plaintext, so a poll opens no sealed payload)."""

from __future__ import annotations

from pulseloop.store import Store
from pulseloop.store.base import Lease


async def test_run_status_follows_the_run_and_stays_in_its_organization(store: Store) -> None:
    await store.create_run("org", "r1", "loop", '{"patient": "p-1"}', 1.0)
    assert await store.run_status("org", "r1") == "queued"
    [claimed] = await store.claim_runs("org", "w", ["loop"], 1, 100.0, 30.0, 1.0)
    assert await store.run_status("org", "r1") == "running"
    await store.finish_run(Lease(claimed.key, "w", "org"), "completed", "1", None, 2.0)
    assert await store.run_status("org", "r1") == "completed"
    assert await store.run_status("other-org", "r1") is None
    assert await store.run_status("org", "missing") is None
