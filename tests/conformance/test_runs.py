"""Claims, fencing and operators: the same answers from every backend."""

from __future__ import annotations

import asyncio

import pytest

from pulseloop.errors import InvalidRunState
from pulseloop.store import Store
from pulseloop.store.base import AttemptRecord, Lease, LeaseLost, StepRecord, WaitRecord


def _step(run_id: str, name: str, output: str = "1", at: float = 1.0) -> StepRecord:
    return StepRecord(run_id, name, 1, "do", "completed", output, None, 1, at, at, "v")


async def _steps(store: Store, org: str, run_id: str) -> list[StepRecord]:
    detail = await store.get_run_detail(org, run_id)
    return [] if detail is None else detail.steps


async def test_writes_of_a_worker_that_lost_its_lease_are_refused(store: Store) -> None:
    await store.create_run("org", "r1", "loop", "null", 1.0)
    [claimed] = await store.claim_runs("org", "w1", ["loop"], 10, 100.0, 5.0, 1.0)
    assert claimed.id == "r1"
    # the lease expires; another worker takes the run over
    [taken] = await store.claim_runs("org", "w2", ["loop"], 10, 106.0, 5.0, 1.0)
    assert taken.id == "r1"
    step = _step("r1", "s")
    with pytest.raises(LeaseLost):
        await store.record_step(Lease("r1", "w1"), step, None)
    with pytest.raises(LeaseLost):
        await store.park_run(Lease("r1", "w1"), 50.0, [], 2.0)
    with pytest.raises(LeaseLost):
        await store.finish_run(Lease("r1", "w1"), "completed", "1", None, 2.0)
    assert await _steps(store, "org", "r1") == []
    assert await store.record_step(Lease("r1", "w2"), step, None) == "running"
    assert [s.name for s in await _steps(store, "org", "r1")] == ["s"]
    # another organization sees nothing of it
    assert await store.get_run("other", "r1") is None
    assert await _steps(store, "other", "r1") == []


async def test_a_step_is_recorded_once(store: Store) -> None:
    await store.create_run("org", "r1", "loop", "null", 1.0)
    await store.claim_runs("org", "w1", ["loop"], 10, 100.0, 30.0, 1.0)
    await store.record_step(Lease("r1", "w1"), _step("r1", "s", '"first"', 1.0), None)
    await store.record_step(Lease("r1", "w1"), _step("r1", "s", '"second"', 2.0), None)
    [kept] = await _steps(store, "org", "r1")
    assert kept.output == '"first"'


async def test_claims_take_queued_runs_oldest_first_then_expired_leases(store: Store) -> None:
    for i in range(5):
        await store.create_run("org", f"r{i}", "loop", "null", float(i))
    await store.create_run("org", "other-loop", "elsewhere", "null", 0.5)
    first = await store.claim_runs("org", "w1", ["loop"], 2, 100.0, 5.0, 10.0)
    assert [r.id for r in first] == ["r0", "r1"]
    assert all(r.status == "running" for r in first)
    rest = await store.claim_runs("org", "w2", ["loop"], 10, 101.0, 5.0, 10.0)
    assert [r.id for r in rest] == ["r2", "r3", "r4"]
    assert await store.claim_runs("org", "w3", ["loop"], 10, 102.0, 5.0, 10.0) == []
    # w1's leases expire: its runs go to the next claimer, nothing else does
    taken = await store.claim_runs("org", "w3", ["loop"], 10, 105.5, 5.0, 10.0)
    assert sorted(r.id for r in taken) == ["r0", "r1"]
    assert await store.renew_leases("w1", ["r0", "r1"], 106.0, 5.0) == {"r0", "r1"}
    assert await store.renew_leases("w3", ["r0", "r1"], 106.0, 5.0) == set()


async def test_concurrent_claims_never_share_a_run(store: Store, second_store: Store) -> None:
    for i in range(60):
        await store.create_run("org", f"r{i:02d}", "loop", "null", float(i))

    async def claim_all(s: Store, worker: str) -> list[str]:
        mine: list[str] = []
        while batch := await s.claim_runs("org", worker, ["loop"], 7, 100.0, 30.0, 1.0):
            mine += [r.id for r in batch]
        return mine

    results = await asyncio.gather(
        claim_all(store, "a"), claim_all(second_store, "b"), claim_all(store, "c")
    )
    everything = [run_id for ids in results for run_id in ids]
    assert sorted(everything) == [f"r{i:02d}" for i in range(60)]  # each exactly once


async def test_a_retried_attempt_and_history(store: Store) -> None:
    await store.create_run("org", "r1", "loop", '{"a": 1}', 1.0)
    [run] = await store.claim_runs("org", "w1", ["loop"], 1, 100.0, 30.0, 1.0)
    assert run.history_len == 0
    lease = Lease("r1", "w1")
    failed = AttemptRecord("r1", "s", 0, 1, "failed", 1.0, 2.0, {"type": "E"}, 12.0, "v", "w1")
    assert await store.record_failed_attempt(lease, failed) == "running"
    history = await store.load_history("r1", 0)
    assert history.failures == {"s": (1, 12.0)}
    assert (await store.get_run("org", "r1")).history_len == 1  # type: ignore[union-attr]
    detail = await store.get_run_detail("org", "r1")
    assert detail is not None and [a.error for a in detail.attempts] == [{"type": "E"}]


async def test_release_hands_a_running_run_on_at_once(store: Store) -> None:
    await store.create_run("org", "r1", "loop", "null", 1.0)
    await store.claim_runs("org", "w1", ["loop"], 1, 100.0, 30.0, 1.0)
    await store.release_run(Lease("r1", "w1"), 2.0)
    [taken] = await store.claim_runs("org", "w2", ["loop"], 1, 100.5, 30.0, 2.0)
    assert taken.id == "r1"


async def test_operators_fence_out_the_worker(store: Store) -> None:
    await store.create_run("org", "r1", "loop", "null", 1.0)
    await store.claim_runs("org", "w1", ["loop"], 1, 100.0, 30.0, 1.0)
    paused = await store.pause_run("org", "r1", 2.0)
    assert paused.status == "paused"
    # a paused run's worker may still record the step in hand, and learns of the pause
    assert await store.record_step(Lease("r1", "w1"), _step("r1", "s"), None) == "paused"
    cancelled = await store.cancel_run("org", "r1", 3.0)
    assert cancelled.status == "cancelled"
    with pytest.raises(LeaseLost):
        await store.record_step(Lease("r1", "w1"), _step("r1", "t"), None)
    with pytest.raises(InvalidRunState):
        await store.cancel_run("org", "r1", 4.0)


async def test_restart_forgets_later_steps_and_gives_back_signals(store: Store) -> None:
    await store.create_run("org", "r1", "loop", "null", 1.0)
    await store.claim_runs("org", "w1", ["loop"], 1, 100.0, 30.0, 1.0)
    lease = Lease("r1", "w1")
    await store.record_step(lease, _step("r1", "a"), None)
    assert await store.send_signal("org", "r1", "event:go", '"x"', 2.0)
    wait, signal = await store.open_wait(
        lease, WaitRecord("r1", "w", 2, "event", "event:go", None, 2.0)
    )
    assert wait.key == "event:go" and signal is not None and signal.payload == '"x"'
    resolved = StepRecord("r1", "w", 2, "event", "completed", '"x"', None, 1, 2.0, 3.0, "v")
    await store.record_step(lease, resolved, signal.id)
    await store.finish_run(lease, "completed", "1", None, 4.0)
    run = await store.restart_run("org", "r1", "w", 5.0)
    assert run.status == "queued" and run.generation == 1
    assert [s.name for s in await _steps(store, "org", "r1")] == ["a"]
    [again] = await store.claim_runs("org", "w2", ["loop"], 1, 100.0, 30.0, 6.0)
    assert again.generation == 1
    _, given_back = await store.open_wait(
        Lease("r1", "w2"), WaitRecord("r1", "w", 2, "event", "event:go", None, 6.0)
    )
    assert given_back is not None and given_back.id == signal.id
