"""The worker's timer pass as one store call, on both backends: a due timer, a due
schedule tick and a passed run deadline are handled in one transaction, each once however
many workers race for them."""

from __future__ import annotations

import asyncio
import json

import pytest

from pulseloop.engine.deadlines import TIMEOUT_ERROR
from pulseloop.engine.schedules import new_record, planner
from pulseloop.store import Store
from pulseloop.store.base import Lease, ScheduleRecord

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC: the schedules' tick
TICK_RUN = "daily:20270115T080000Z"


async def _due_everything(store: Store, n: int = 1) -> None:
    """``n`` each of: a run parked until T0 - 5, a daily schedule due at T0, a queued run
    whose deadline was T0 - 1; plus what comes next (a wake at T0 + 100, a deadline at
    T0 + 50)."""
    for i in range(n):
        await store.put_schedule(
            new_record(
                "org", "daily" if i == 0 else f"daily{i}", "loop", cron="0 8 * * *",
                tz="UTC", body_json=json.dumps({"ward": i}), missed="skip", start_at=None,
                end_at=None, source="api", now=T0 - 60,
            )
        )  # fmt: skip
        await store.create_run("org", f"late{i}", "other", "null", T0 - 30, deadline_at=T0 - 1)
        await store.create_run("org", f"nap{i}", "loop", "null", T0 - 20)
    await store.create_run("org", "later", "other", "null", T0 - 10, deadline_at=T0 + 50)
    await store.create_run("org", "long-nap", "loop", "null", T0 - 10)
    claimed = await store.claim_runs("org", "w", ["loop"], 2 * n + 1, 100.0, 300.0, T0 - 10)
    for run in claimed:
        wake_at = T0 + 100 if run.id == "long-nap" else T0 - 5
        assert await store.park_run(Lease(run.key, "w", "org"), wake_at, [], T0 - 10)


async def test_one_call_fires_a_timer_a_schedule_tick_and_a_deadline(store: Store) -> None:
    await _due_everything(store)
    late = await store.get_run("org", "late0")
    assert late is not None

    due = await store.timer_pass("org", T0, planner("org", T0), 10, TIMEOUT_ERROR)

    assert (due.fired, due.started, due.timed_out) == (1, 1, (late.key,))
    assert due.next_at == T0 + 50  # the earliest of the next deadline, wake and tick
    nap = await store.get_run("org", "nap0")
    assert nap is not None and nap.status == "queued"
    tick = await store.get_run("org", TICK_RUN)
    assert tick is not None and tick.status == "queued" and json.loads(tick.input) == {"ward": 0}
    failed = await store.get_run("org", "late0")
    assert failed is not None and failed.status == "failed"
    assert failed.error is not None and failed.error["type"] == "RunTimeout"

    again = await store.timer_pass("org", T0 + 1, planner("org", T0 + 1), 10, TIMEOUT_ERROR)
    assert (again.fired, again.started, again.timed_out) == (0, 0, ())


async def test_a_pass_that_fails_midway_changes_nothing(store: Store) -> None:
    # one transaction: the timer fired before the schedule's plan failed is rolled back
    await _due_everything(store)

    def broken(record: ScheduleRecord) -> None:
        raise RuntimeError(f"plan of {record.id} failed")

    with pytest.raises(RuntimeError, match="plan of daily failed"):
        await store.timer_pass("org", T0, broken, 10, TIMEOUT_ERROR)  # type: ignore[arg-type]

    nap = await store.get_run("org", "nap0")
    assert nap is not None and nap.status == "waiting"
    late = await store.get_run("org", "late0")
    assert late is not None and late.status == "queued"
    assert await store.get_run("org", TICK_RUN) is None
    due = await store.timer_pass("org", T0, planner("org", T0), 10, TIMEOUT_ERROR)
    assert (due.fired, due.started, len(due.timed_out)) == (1, 1, 1)


async def test_racing_passes_handle_each_due_item_once(store: Store, second_store: Store) -> None:
    await _due_everything(store, n=12)
    outcomes = await asyncio.gather(
        *(
            s.timer_pass("org", T0, planner("org", T0), 5, TIMEOUT_ERROR)
            for s in (store, second_store) * 4
        )
    )
    assert sum(o.fired for o in outcomes) == 12
    assert sum(o.started for o in outcomes) == 12
    timed_out = [key for o in outcomes for key in o.timed_out]
    assert len(timed_out) == len(set(timed_out)) == 12
    runs = await store.list_runs("org", limit=100)
    assert sum(r.status == "queued" for r in runs) == 12 + 12 + 1  # naps, ticks, "later"
    assert sum(r.status == "failed" for r in runs) == 12
