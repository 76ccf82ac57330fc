"""SQLite: the work of every query a running system repeats is independent of history.

A claim that walked every run of the organization (18 ms at 21,000 runs, 118 ms at 50,000)
passed every functional test; only the work it does shows the problem. So each repeated
operation runs on a store with a little history and on one with a hundred times more, and
the SQLite virtual machine's instructions are counted (a progress handler called every
few instructions): a deterministic measure of work, unlike time. ``/metrics`` totals come
from counters kept by triggers; they must equal a full count after any mix of operations,
including on a database migrated from before the counters existed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from pulseloop.engine.deadlines import TIMEOUT_ERROR
from pulseloop.engine.schedules import FIRE_BATCH, planner
from pulseloop.store.base import Lease, StepRecord, TimerOutcome, WaitRecord
from pulseloop.store.migrations import migrations_for
from pulseloop.store.retention import purge_batch, purge_deliveries
from pulseloop.store.sqlite.store import SqliteStore

ORG = "acme"
SMALL, LARGE = 30, 3_000
"""Finished runs (of 3 steps each) in the small and the large store."""


async def _filled(path: Path, finished_runs: int) -> SqliteStore:
    """A store holding ``finished_runs`` completed runs of 3 steps, a scan, and keys."""
    store = SqliteStore(str(path))
    await store.open()
    await store.ensure_org(ORG, 0.0)

    def fill(conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO runs (org, id, loop, status, input, output, history_len, created_at, "
            "updated_at, started_at, finished_at, run_key) VALUES (?, ?, 'loop', 'completed', "
            "'{}', '1', 1, ?, ?, ?, ?, ?)",
            [(ORG, f"old-{i:06d}", i, i, i, i + 1, f"old-{i:06d}") for i in range(finished_runs)],
        )
        conn.executemany(
            "INSERT INTO steps (run_id, name, seq, kind, status, output, attempts, "
            "started_at, finished_at) VALUES (?, ?, ?, 'do', 'completed', '1', 1, ?, ?)",
            [
                (f"old-{i:06d}", f"s{k}", k, i, i + 0.5)
                for i in range(finished_runs)
                for k in range(3)
            ],
        )
        conn.executemany(
            "INSERT INTO scans (org, id, run_id, step, token_hash, status, metadata, "
            "created_at, updated_at, expires_at, completed_at) VALUES (?, ?, ?, 'scan', ?, "
            "'completed', '{}', ?, ?, ?, ?)",
            [
                (ORG, f"s-{i}", f"old-{i:06d}", f"h-{i}", i, i, i + 9, i)
                for i in range(0, finished_runs, 3)
            ],
        )
        conn.executemany(  # one delivered webhook per run, with its one attempt
            "INSERT INTO webhook_deliveries (id, org, endpoint_id, event, subject, run_id, "
            "status, occurred_at, state, attempts, finished_at) VALUES (?, ?, 'we-1', "
            "'run.completed', ?, ?, 'completed', ?, 'delivered', 1, ?)",
            [(i + 1, ORG, f"old-{i:06d}", f"old-{i:06d}", i + 1, i + 1.5)
             for i in range(finished_runs)],
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, "
            "status_code) VALUES (?, 1, ?, 5, 200)",
            [(i + 1, i + 1) for i in range(finished_runs)],
        )

    await store._db.run(fill)
    return store


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    """(small history, large history)."""
    small = await _filled(tmp_path / "small.db", SMALL)
    large = await _filled(tmp_path / "large.db", LARGE)
    yield small, large
    await small.close()
    await large.close()


def _step(run_id: str, name: str, at: float) -> StepRecord:
    return StepRecord(run_id, name, 0, "do", "completed", "1", None, 1, at, at + 0.01, None)


async def _work(store: SqliteStore, op: Callable[[], Awaitable[object]]) -> int:
    """Virtual-machine instructions (in hundreds) the store's connection ran for ``op``."""
    ticks = [0]

    def tick() -> int:
        ticks[0] += 1
        return 0  # go on

    def install(conn: sqlite3.Connection) -> None:
        conn.set_progress_handler(tick, 100)

    def remove(conn: sqlite3.Connection) -> None:
        conn.set_progress_handler(None, 0)

    await store._db.run(install)
    try:
        await op()
    finally:
        await store._db.run(remove)
    return ticks[0]


async def _timer_pass(store: SqliteStore, now: float) -> TimerOutcome:
    """The worker's timer pass (timers, schedule ticks, run deadlines) at ``now``."""
    return await store.timer_pass(ORG, now, planner(ORG, now), FIRE_BATCH, TIMEOUT_ERROR)


async def _session(store: SqliteStore) -> dict[str, int]:
    """The work of each repeated operation, in a worker's and a dashboard's order."""
    now = 1e6
    work: dict[str, int] = {}

    async def measure(name: str, op: Callable[[], Awaitable[object]]) -> None:
        work[name] = await _work(store, op)

    await measure("trigger", lambda: store.create_run(ORG, "new", "loop", "{}", now))
    await measure("claim", lambda: store.claim_runs(ORG, "w1", ["loop"], 10, now, 30.0, now))
    await measure(
        "claim (empty)", lambda: store.claim_runs(ORG, "w1", ["loop"], 10, now, 30.0, now)
    )
    lease = Lease("new", "w1")
    await measure("renew", lambda: store.renew_leases("w1", ["new"], now, 30.0))
    await measure("load history", lambda: store.load_history("new", 0))
    await measure("record step", lambda: store.record_step(lease, _step("new", "a", now)))
    wait = WaitRecord("new", "nap", 1, "sleep", None, now + 10, now)
    await measure("open wait", lambda: store.open_wait(lease, wait))
    await measure("park", lambda: store.park_run(lease, now + 10, [], now))
    await measure("timer pass (none due)", lambda: _timer_pass(store, now + 1))
    await measure("timers (none due)", lambda: store.fire_timers(ORG, now + 1))
    await measure("timer pass (one due)", lambda: _timer_pass(store, now + 20))
    await measure("signal", lambda: store.send_signal(ORG, "new", "evt", "{}", now + 21))
    await measure("metrics", lambda: store.stats(now - 5))
    await measure("list", lambda: store.list_runs(ORG, limit=50))
    await measure("list failed", lambda: store.list_runs(ORG, status="failed", limit=50))
    await measure("list by loop", lambda: store.list_runs(ORG, loop="loop", limit=50))
    await measure(
        "list page 2", lambda: store.list_runs(ORG, limit=50, before=20.0, before_id="old-000020")
    )
    await measure("detail", lambda: store.get_run_detail(ORG, "old-000005"))
    await measure("latest scan", lambda: store.latest_scan(ORG, "old-000003"))
    await measure("scan by link", lambda: store.scan_by_token("h-3"))
    # retention: a batch purges the oldest due runs (and their scans) or finds none due
    await measure("purge (none due)", lambda: purge_batch(store, ORG, -1.0, now, 10))
    await measure("purge (one batch)", lambda: purge_batch(store, ORG, now, now, 10))
    await measure("purge (next batch)", lambda: purge_batch(store, ORG, now, now + 1, 10))
    # and deletes the oldest finished webhook deliveries with their attempts
    await measure("deliveries (none due)", lambda: purge_deliveries(store, ORG, -1.0, 10))
    await measure("deliveries (one batch)", lambda: purge_deliveries(store, ORG, now, 10))
    await measure("deliveries (next batch)", lambda: purge_deliveries(store, ORG, now, 10))
    return work


async def test_repeated_queries_do_the_same_work_whatever_the_history(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    small, large = stores
    small_work, large_work = await _session(small), await _session(large)
    grew = {
        name: (small_work[name], large_work[name])
        for name in small_work
        if large_work[name] > 2 * small_work[name] + 5
    }
    assert grew == {}, f"work (x100 instructions, {SMALL} vs {LARGE} runs) grew with history"


async def test_status_counters_match_a_full_count(tmp_path: Path) -> None:
    store = await _filled(tmp_path / "counts.db", 4)
    try:
        await _mixed_operations(store)
        stats = await store.stats(0.0)
    finally:
        await store.close()
    conn = sqlite3.connect(store.path)
    try:
        runs = dict(conn.execute("SELECT status, count(*) FROM runs GROUP BY 1"))
        scans = dict(conn.execute("SELECT status, count(*) FROM scans GROUP BY 1"))
    finally:
        conn.close()
    assert {k: v for k, v in stats.runs_by_status.items() if v} == runs
    assert {k: v for k, v in stats.scans_by_status.items() if v} == scans
    assert runs == {"completed": 4, "queued": 1, "cancelled": 1}
    assert scans == {"completed": 2, "expired": 1, "failed": 1}


async def _mixed_operations(store: SqliteStore) -> None:
    await store.create_run(ORG, "c1", "loop", "{}", 100.0)
    await store.create_run(ORG, "c2", "loop", "{}", 100.0)
    await store.create_run(ORG, "c1", "loop", "{}", 100.0)  # idempotent: counted once
    await store.cancel_run(ORG, "c2", 101.0)
    (run,) = await store.claim_runs(ORG, "w", ["loop"], 5, 101.0, 30.0, 101.0)
    await store.finish_run(Lease(run.id, "w"), "failed", None, {"message": "x"}, 102.0)
    await store.retry_run(ORG, run.id, 103.0)
    await store.create_scan(ORG, "c1", "scan", "x-2", "hx-2", "{}", 103.0, 104.0)
    await store.create_scan(ORG, "c1", "again", "x-3", "hx-3", "{}", 103.0, 999.0)
    await store.finish_scan("x-3", "failed", None, "no_face", 103.0)
    await store.fire_timers(ORG, 105.0)  # x-2 expires


async def test_counters_start_from_the_rows_of_an_older_database(tmp_path: Path) -> None:
    path = str(tmp_path / "v3.db")
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in migrations_for("sqlite"):
        if migration.version <= 3:
            conn.executescript(migration.sql)
    conn.execute(f"PRAGMA user_version = {3:d}")
    for i, status in enumerate(("completed", "completed", "failed", "queued")):
        conn.execute(
            "INSERT INTO runs (org, id, loop, status, input, created_at, updated_at) "
            "VALUES (?, ?, 'loop', ?, '{}', 0, 0)",
            (ORG, f"r{i}", status),
        )
    conn.close()

    store = SqliteStore(path)
    await store.open()
    try:
        stats = await store.stats(0.0)
    finally:
        await store.close()
    assert stats.runs_by_status == {"completed": 2, "failed": 1, "queued": 1}


async def _keyed_backlog(store: SqliteStore, queued_per_key: int) -> None:
    """Five keys (limit 1), each with a run holding its slot and ``queued_per_key`` queued
    behind it."""
    for key in range(5):
        for n in range(queued_per_key + 1):
            await store.create_run(
                ORG, f"k{key}-{n:05d}", "loop", "{}", 10.0 + n, flow_key=f"key{key}", flow_limit=1
            )
        (held,) = await store.claim_runs(ORG, "w0", ["loop"], 1, 10.0, 1e9, 10.0, f"k{key}-00000")
        assert held.id == f"k{key}-00000"


async def _keyed_session(store: SqliteStore) -> dict[str, int]:
    """The work of triggering and claiming under a per-key limit."""
    now = 1e6
    work: dict[str, int] = {}

    async def measure(name: str, op: Callable[[], Awaitable[object]]) -> None:
        work[name] = await _work(store, op)

    await measure(
        "keyed trigger",
        lambda: store.create_run(ORG, "fresh", "loop", "{}", now, flow_key="free", flow_limit=1),
    )
    await measure("keyed claim", lambda: store.claim_runs(ORG, "w1", ["loop"], 10, now, 30.0, now))
    await measure(
        "keyed claim (every key full)",
        lambda: store.claim_runs(ORG, "w1", ["loop"], 10, now, 30.0, now),
    )
    await measure("keyed park", lambda: store.park_run(Lease("fresh", "w1"), now + 10, [], now))
    return work


async def test_keyed_claims_do_the_same_work_whatever_the_history_and_backlog(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    small, large = stores
    await _keyed_backlog(small, SMALL // 5)
    await _keyed_backlog(large, LARGE // 5)
    small_work, large_work = await _keyed_session(small), await _keyed_session(large)
    grew = {
        name: (small_work[name], large_work[name])
        for name in small_work
        if large_work[name] > 2 * small_work[name] + 5
    }
    assert grew == {}, f"work (x100 instructions, {SMALL} vs {LARGE} runs) grew with history"
    claimed = await large.claim_runs(ORG, "w2", ["loop"], 10, 2e6, 30.0, 2e6)
    assert claimed == []  # the five keys stay full: nothing behind them was taken
