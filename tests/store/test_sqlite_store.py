"""The SQLite backend: durability settings, schema safety, fencing, group commit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pulseloop.errors import SchemaTooNew, StoreError
from pulseloop.store import open_store
from pulseloop.store.base import Lease, LeaseLost, StepRecord
from pulseloop.store.sqlite import SqliteStore
from pulseloop.store.sqlite.database import connect


async def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.execute("CREATE TABLE from_the_future (x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    store = SqliteStore(str(path))
    with pytest.raises(SchemaTooNew, match="999"):
        await store.open()
    assert path.read_bytes() == before
    assert not Path(str(path) + "-wal").exists()


async def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a pulseloop database"):
        await SqliteStore(str(path)).open()


async def test_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create the database folder"):
        await SqliteStore(str(blocker / "sub" / "db.sqlite")).open()


def test_bad_urls_are_explained() -> None:
    with pytest.raises(StoreError, match="postgres://x"):
        open_store("postgres://x")
    with pytest.raises(StoreError, match="sqlite://relative"):
        open_store("sqlite://relative")


def test_durability_pragmas(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "d.db"))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


async def _steps(store: SqliteStore, org: str, run_id: str) -> list[StepRecord]:
    detail = await store.get_run_detail(org, run_id)
    return [] if detail is None else detail.steps


async def test_writes_of_a_worker_that_lost_its_lease_are_refused(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "f.db"))
    await store.open()
    try:
        await store.create_run("org", "r1", "loop", "null", 1.0)
        [claimed] = await store.claim_runs("org", "w1", ["loop"], 10, 100.0, 5.0, 1.0)
        assert claimed.id == "r1"
        # the lease expires; another worker takes the run over
        [taken] = await store.claim_runs("org", "w2", ["loop"], 10, 106.0, 5.0, 1.0)
        assert taken.id == "r1"
        step = StepRecord("r1", "s", 1, "do", "completed", "1", None, 1, 1.0, 1.0, "v")
        with pytest.raises(LeaseLost):
            await store.record_step(Lease("r1", "w1"), step, None)
        assert await _steps(store, "org", "r1") == []
        await store.record_step(Lease("r1", "w2"), step, None)
        assert [s.name for s in await _steps(store, "org", "r1")] == ["s"]
        # another organization sees nothing of it
        assert await store.get_run("other", "r1") is None
        assert await _steps(store, "other", "r1") == []
    finally:
        await store.close()


async def test_a_step_is_recorded_once(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "o.db"))
    await store.open()
    try:
        await store.create_run("org", "r1", "loop", "null", 1.0)
        await store.claim_runs("org", "w1", ["loop"], 10, 100.0, 30.0, 1.0)
        first = StepRecord("r1", "s", 1, "do", "completed", '"first"', None, 1, 1.0, 1.0, "v")
        second = StepRecord("r1", "s", 1, "do", "completed", '"second"', None, 1, 2.0, 2.0, "v")
        await store.record_step(Lease("r1", "w1"), first, None)
        await store.record_step(Lease("r1", "w1"), second, None)
        [kept] = await _steps(store, "org", "r1")
        assert kept.output == '"first"'
    finally:
        await store.close()


async def test_a_worker_reserves_the_wal_and_a_reader_does_not(tmp_path: Path) -> None:
    from pulseloop import App, Event, Loop, Step
    from pulseloop.store.sqlite.database import WAL_RESERVE_BYTES

    class Noop(Loop):
        async def run(self, event: Event, step: Step) -> None:
            return None

    reader_db, worker_db = tmp_path / "reader.db", tmp_path / "worker.db"
    async with App([], f"sqlite:///{reader_db}", worker=False):
        assert Path(f"{reader_db}-wal").stat().st_size < WAL_RESERVE_BYTES
    async with App([Noop], f"sqlite:///{worker_db}"):
        assert Path(f"{worker_db}-wal").stat().st_size >= WAL_RESERVE_BYTES
        with sqlite3.connect(worker_db) as conn:  # the filler is gone, its pages reusable
            assert conn.execute("SELECT count(*) FROM wal_reserve").fetchone() == (0,)
