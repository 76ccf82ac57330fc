"""Concurrency limits under racing claimers: the same answers from every backend.

Two stores on one database (two worker processes) claim at once, many times over, from a
backlog of keyed runs; at no moment do more runs of a key hold a slot than its limit.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

from pulseloop.store import Store
from pulseloop.store.base import Lease, RunRecord

KEYS, PER_KEY, LIMIT = 4, 12, 2


async def test_racing_claimers_never_exceed_a_key_limit(store: Store, second_store: Store) -> None:
    key_of: dict[str, str] = {}
    for n in range(KEYS * PER_KEY):
        key = f"key{n % KEYS}"
        run_id = f"r{n:03d}"
        key_of[run_id] = key
        await store.create_run(
            "org", run_id, "loop", json.dumps(n), float(n), flow_key=key, flow_limit=LIMIT
        )
    holding: dict[str, str] = {}  # run id -> the worker holding it
    done: list[str] = []
    most = Counter[str]()
    while len(done) < KEYS * PER_KEY:
        claims = [
            (worker, s.claim_runs("org", worker, ["loop"], 3, 100.0, 60.0, 100.0))
            for s, worker in ((store, "w1"), (second_store, "w2"), (store, "w3"),
                              (second_store, "w4"))
        ]  # fmt: skip
        results: list[list[RunRecord]] = await asyncio.gather(*(c for _, c in claims))
        for (worker, _), claimed in zip(claims, results, strict=True):
            for run in claimed:
                assert run.id not in holding
                holding[run.id] = worker
        at_once = Counter(key_of[r] for r in holding)
        assert max(at_once.values(), default=0) <= LIMIT, at_once
        for key in at_once:  # FIFO within a key: no queued run is older than a taken one
            taken = sorted(r for r in [*holding, *done] if key_of[r] == key)
            assert taken == sorted(r for r in key_of if key_of[r] == key)[: len(taken)]
        most |= at_once
        # finish one run of each key held; the rest stay, so claims race for the gaps
        finished: set[str] = set()
        for run_id, worker in list(holding.items()):
            if key_of[run_id] not in finished:
                finished.add(key_of[run_id])
                s = store if worker in ("w1", "w3") else second_store
                await s.finish_run(Lease(run_id, worker, "org"), "completed", "1", None, 101.0)
                del holding[run_id]
                done.append(run_id)
    assert set(most.values()) == {LIMIT}  # every key was filled to its limit, never beyond


async def test_a_one_run_claim_takes_its_keyed_run_only_when_the_key_has_room(
    store: Store,
) -> None:
    for run_id in ("first", "second"):
        await store.create_run("org", run_id, "loop", "1", 1.0, flow_key="k", flow_limit=1)
    await store.create_run("org", "other", "loop", "1", 1.0, flow_key="k2", flow_limit=1)
    (held,) = await store.claim_runs("org", "w1", ["loop"], 5, 10.0, 60.0, 10.0, run_id="first")
    assert held.id == "first"
    assert await store.claim_runs("org", "w2", ["loop"], 5, 10.0, 60.0, 10.0, "second") == []
    await store.finish_run(Lease(held.key, "w1", "org"), "completed", "1", None, 11.0)
    (taken,) = await store.claim_runs("org", "w2", ["loop"], 5, 10.0, 60.0, 10.0, "second")
    assert taken.id == "second"  # and only it: "other" of another key stays queued
    assert (await store.get_run("org", "other")).status == "queued"  # type: ignore[union-attr]


async def test_a_run_paused_mid_step_keeps_its_slot_until_its_worker_lets_go(
    store: Store,
) -> None:
    for run_id in ("first", "second"):
        await store.create_run("org", run_id, "loop", "1", 1.0, flow_key="k", flow_limit=1)
    (held,) = await store.claim_runs("org", "w1", ["loop"], 5, 10.0, 60.0, 10.0)
    await store.pause_run("org", held.id, 11.0)  # its worker is still in the step
    assert await store.claim_runs("org", "w2", ["loop"], 5, 10.0, 60.0, 11.0) == []
    await store.release_run(Lease(held.key, "w1", "org"), 12.0)  # the step ended: let go
    (taken,) = await store.claim_runs("org", "w2", ["loop"], 5, 10.0, 60.0, 12.0)
    assert taken.id == "second"
    await store.resume_run("org", held.id, 13.0, 13.0)  # queued again: waits for the slot
    assert await store.claim_runs("org", "w3", ["loop"], 5, 13.0, 60.0, 13.0) == []
