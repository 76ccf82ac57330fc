"""Schedule rows on both backends: racing workers fire each tick once; definitions are
replaced without losing a due tick or an operator's pause; the due-check reads the index."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3

from pulseloop.engine.cron import plan
from pulseloop.engine.schedules import new_record
from pulseloop.store import Store
from pulseloop.store.base import Firing, ScheduleRecord
from pulseloop.store.sqlite.store import SqliteStore

DAY = 86400.0
T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC


def _record(i: int, now: float = T0 - 60, cron: str = "0 8 * * *") -> ScheduleRecord:
    return new_record(
        "org", f"s{i:03d}", "loop", cron=cron, tz="UTC", body_json=f'{{"n": {i}}}',
        missed="skip", start_at=None, end_at=None, source="api", now=now,
    )  # fmt: skip


async def test_racing_stores_fire_each_due_tick_once(store: Store, second_store: Store) -> None:
    for i in range(40):
        await store.put_schedule(_record(i))
    assert await store.fire_schedules("org", T0 - 1, lambda r: plan(r, T0 - 1), 100) == (0, T0)
    planned: list[str] = []

    def counted(record: ScheduleRecord) -> Firing:
        planned.append(record.id)
        return plan(record, T0)

    results = await asyncio.gather(
        *(s.fire_schedules("org", T0, counted, limit) for s in (store, second_store) * 3
          for limit in (7, 100))
    )  # fmt: skip
    assert sum(started for started, _ in results) == 40  # one run per schedule
    # and each due row was claimed by one store only (row locks, not just the idempotent
    # insert, keep racing workers apart)
    assert sorted(planned) == [f"s{i:03d}" for i in range(40)]
    runs = await store.list_runs("org", limit=100)
    assert sorted(r.id for r in runs) == [f"s{i:03d}:20270115T080000Z" for i in range(40)]
    assert {r.input for r in runs if r.id.startswith("s007:")} == {'{"n": 7}'}
    schedule = await store.get_schedule("org", "s007")
    assert schedule is not None and schedule.next_fire_at == T0 + DAY
    assert schedule.last_fire_at == T0 and schedule.last_run_id == "s007:20270115T080000Z"


async def test_a_tick_fired_again_starts_no_second_run(store: Store) -> None:
    await store.put_schedule(_record(1))
    assert (await store.fire_schedules("org", T0, lambda r: plan(r, T0), 10))[0] == 1
    # a recreated schedule (same id, due again at the same tick) finds its run made
    await store.delete_schedule("org", "s001")
    await store.put_schedule(_record(1))
    assert (await store.fire_schedules("org", T0, lambda r: plan(r, T0), 10))[0] == 0
    assert len(await store.list_runs("org")) == 1


async def test_replacing_keeps_a_due_tick_and_a_pause(store: Store) -> None:
    await store.put_schedule(_record(1))
    # a worker restarting after the tick re-declares the schedule: the tick stays due
    again = await store.put_schedule(_record(1, now=T0 + 60))
    assert again.next_fire_at == T0
    changed = await store.put_schedule(_record(1, now=T0 + 60, cron="0 9 * * *"))
    assert changed.next_fire_at == T0 + 3600  # 09:00 the same day
    paused = await store.pause_schedule("org", "s001", True, None, T0)
    assert paused is not None and paused.paused and paused.next_fire_at is None
    kept = await store.put_schedule(_record(1, cron="0 10 * * *"))
    assert kept.paused and kept.next_fire_at is None and kept.cron == "0 10 * * *"
    resumed = await store.pause_schedule("org", "s001", False, T0 + 7200, T0)
    assert resumed is not None and not resumed.paused and resumed.next_fire_at == T0 + 7200
    assert await store.pause_schedule("org", "nope", True, None, T0) is None


async def test_code_schedules_the_code_dropped_are_deleted(store: Store) -> None:
    for i, source in enumerate(("code", "code", "api")):
        await store.put_schedule(dataclasses.replace(_record(i), source=source))
    assert await store.delete_code_schedules("org", "loop", ["s000"]) == 1
    assert [s.id for s in await store.list_schedules("org")] == ["s000", "s002"]
    assert await store.delete_code_schedules("org", "loop", []) == 1
    assert [s.id for s in await store.list_schedules("org")] == ["s002"]


async def test_schedules_are_scoped_by_organization(store: Store) -> None:
    await store.put_schedule(_record(1))
    assert await store.get_schedule("other", "s001") is None
    assert await store.list_schedules("other") == []
    assert not await store.delete_schedule("other", "s001")
    assert await store.fire_schedules("other", T0, lambda r: plan(r, T0), 10) == (0, None)


async def test_the_due_check_seeks_the_index(store: Store) -> None:
    if not isinstance(store, SqliteStore):  # PostgreSQL's plan: see bench/schedules.py
        return
    conn = sqlite3.connect(store.path)
    try:
        plan_rows = conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM schedules WHERE org = 'o' AND next_fire_at <= 1 "
            "ORDER BY next_fire_at LIMIT 10"
        ).fetchall()
    finally:
        conn.close()
    assert any("USING INDEX schedules_due" in str(row) for row in plan_rows), plan_rows


async def test_a_tick_whose_run_id_another_org_used_still_starts(store: Store) -> None:
    await store.create_run("other", "s001:20270115T080000Z", "loop", "null", 1.0)
    for i in range(3):
        await store.put_schedule(_record(i))
    assert (await store.fire_schedules("org", T0, lambda r: plan(r, T0), 10))[0] == 3
    mine = await store.get_run("org", "s001:20270115T080000Z")
    assert mine is not None and mine.key != mine.id and mine.input == '{"n": 1}'
    theirs = await store.get_run("other", "s001:20270115T080000Z")
    assert theirs is not None and theirs.input == "null"


async def test_a_plan_may_give_the_tick_run_its_own_input(store: Store) -> None:
    # what an encrypting layer needs: the body sealed for the schedule's row is resealed
    # for the run's row by a wrapped plan, not copied as it is
    await store.put_schedule(_record(1))
    await store.put_schedule(_record(2))

    def resealing(record: ScheduleRecord) -> Firing:
        firing = plan(record, T0)
        if record.id == "s001":
            return dataclasses.replace(firing, run_input='{"n": "resealed"}')
        return firing

    assert (await store.fire_schedules("org", T0, resealing, 10))[0] == 2
    own = await store.get_run("org", "s001:20270115T080000Z")
    assert own is not None and own.input == '{"n": "resealed"}'
    copied = await store.get_run("org", "s002:20270115T080000Z")
    assert copied is not None and copied.input == '{"n": 2}'
