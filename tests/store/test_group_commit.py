"""The database thread: concurrent operations share a commit; a failure is isolated."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pulseloop.store.sqlite.database import Database


def _insert(value: int, fail: bool = False) -> Callable[[sqlite3.Connection], int]:
    def op(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (?)", (value,))
        if fail:
            raise ValueError(f"op {value} failed after writing")
        return value

    return op


async def test_one_failing_operation_loses_only_its_own_write(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "g.db"))
    db.start(init=lambda conn: conn.execute("CREATE TABLE t (v INTEGER)"))
    try:
        # hold the thread so the next operations queue up and share one batch
        holding, release = threading.Event(), threading.Event()

        def hold(conn: sqlite3.Connection) -> None:
            holding.set()
            release.wait(60)

        blocker = asyncio.ensure_future(db.run(hold))
        await asyncio.to_thread(holding.wait, 60)
        before = db.commits
        queued = [
            asyncio.ensure_future(db.run(_insert(1))),
            asyncio.ensure_future(db.run(_insert(2, fail=True))),
            asyncio.ensure_future(db.run(_insert(3))),
        ]
        await asyncio.sleep(0)  # each task runs up to its queue.put, then waits
        release.set()
        results = await asyncio.gather(*queued, return_exceptions=True)
        await blocker
        assert (results[0], results[2]) == (1, 3)
        assert isinstance(results[1], ValueError)
        assert db.commits - before == 2  # the blocker's, then one shared by all three
        rows = await db.run(lambda conn: [r[0] for r in conn.execute("SELECT v FROM t ORDER BY v")])
        assert rows == [1, 3]
    finally:
        await db.stop()


async def test_a_failing_lone_operation_is_rolled_back(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.start(init=lambda conn: conn.execute("CREATE TABLE t (v INTEGER)"))
    try:
        with pytest.raises(ValueError, match="op 7"):
            await db.run(_insert(7, fail=True))
        assert await db.run(lambda conn: conn.execute("SELECT count(*) FROM t").fetchone()[0]) == 0
    finally:
        await db.stop()
