"""SQLite only: durability settings, file safety, the WAL. (Claims, fencing and the rest
are in tests/conformance/, run on both backends.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pulseloop.errors import SchemaTooNew, StoreError
from pulseloop.store import open_store
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
    with pytest.raises(StoreError, match="mysql://x"):
        open_store("mysql://x")
    with pytest.raises(StoreError, match="sqlite://relative"):
        open_store("sqlite://relative")


def test_durability_pragmas(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "d.db"))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


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
