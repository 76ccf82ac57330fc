"""One SQLite connection on one thread, with group commit.

Design record. SQLite allows one writer at a time and each commit with
``synchronous=FULL`` costs an fsync (~120 us here), so one commit per step would cap a
worker near 8,000 steps/s however many runs it holds. Considered:

* a connection per coroutine via ``asyncio.to_thread``: every write still pays its own
  fsync and the threads fight over the write lock;
* aiosqlite: the same one-commit-per-call model behind a thread;
* **a single database thread that drains its queue and runs everything waiting in one
  transaction** (group commit): N concurrent step records share one fsync, and no caller
  is answered before the commit that holds its write has returned. Chosen.

Each operation is a plain function ``fn(conn) -> T``. In a batch of several, each runs
inside its own SAVEPOINT so one failing operation rolls back only itself. Results are
handed back to the event loop in one ``call_soon_threadsafe`` per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]
_Item = tuple[Operation, "asyncio.Future[Any]", asyncio.AbstractEventLoop]
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]

log = logging.getLogger(__name__)

MAX_BATCH = 512
WAL_RESERVE_BYTES = 4 * 1024 * 1024
"""About SQLite's autocheckpoint threshold (1,000 pages): the WAL's steady-state size."""
_STOP = object()


def connect(path: str) -> sqlite3.Connection:
    """Open ``path`` with pulseloop's durability settings."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # every recorded step survives power loss
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def reserve_wal(conn: sqlite3.Connection, path: str, size: int = WAL_RESERVE_BYTES) -> None:
    """Grow the WAL file to its steady-state size before the first step commits.

    Measured here: a synced commit that *extends* the WAL file costs ~190 us (the file
    system must also journal the new size), one that reuses WAL space ~100 us. A database
    that has been running a while reuses its WAL after every checkpoint; a fresh one (and
    any database after its last connection closed, which deletes the WAL) would pay the
    growth on every step of its first ~1,000 commits. So a worker pre-grows it, like
    PostgreSQL preallocates WAL segments: one 4 MiB write at start-up. The filler rows
    are deleted at once; their pages stay on the free list for later rows.
    """
    wal = Path(path + "-wal")
    if wal.exists() and wal.stat().st_size >= size:
        return
    conn.execute("CREATE TABLE IF NOT EXISTS wal_reserve (filler BLOB)")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO wal_reserve VALUES (zeroblob(?))", (size,))
    conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("DELETE FROM wal_reserve")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()  # next writes reuse the WAL


class Database:
    """Runs operations on a dedicated thread, committing concurrent ones together."""

    def __init__(self, path: str, *, reserve_wal: bool = False) -> None:
        self._path = path
        self._reserve_wal = reserve_wal and path != ":memory:"
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._busy = threading.Lock()
        """Held while a transaction runs, on the database thread or inline."""
        self.commits = 0
        """How many transactions were committed (a group commit counts once)."""
        self.inline_when: Callable[[], bool] | None = None
        """When set and true, an operation that finds the database idle runs on the
        caller's thread instead of the database thread (see :meth:`run`)."""

    def start(self, init: Operation | None = None) -> None:
        """Connect, run ``init(conn)`` (migrations), start the thread; raises on failure."""
        self._conn = connect(self._path)
        try:
            if init is not None:
                init(self._conn)
            if self._reserve_wal:
                reserve_wal(self._conn, self._path)
        except BaseException:
            self._conn.close()
            raise
        self._thread = threading.Thread(target=self._serve, name="pulseloop-sqlite", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Let queued operations finish, then close the connection."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, may_inline: bool = False) -> T:
        """Run ``fn(conn)`` in the next transaction; return once it is committed.

        ``may_inline``: a run's own write (a step record, a wait), which may commit on the
        caller's thread when ``inline_when()`` holds. Triggers and reads never do: they
        come in bursts that group commit serves better.
        """
        if self._thread is None:
            raise RuntimeError("the database is not open; use `async with App(...)`")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        solo = self.inline_when
        inline = may_inline and solo is not None and solo() and self._queue.empty()
        if inline and self._busy.acquire(blocking=False):
            # Nothing else wants the database and only one run is executing: group commit
            # has nobody to group, so commit here and skip the two thread hand-offs
            # (~45 us of a ~270 us step). The event loop waits for the fsync, which
            # costs nothing when it has nothing else to do.
            try:
                assert self._conn is not None
                self._execute(self._conn, [(fn, future, loop)], deliver=_resolve)
            finally:
                self._busy.release()
        else:
            self._queue.put((fn, future, loop))
        return await future

    def _serve(self) -> None:
        conn = self._conn
        assert conn is not None
        while True:
            first = self._queue.get()
            if first is _STOP:
                break
            batch: list[_Item] = [first]  # type: ignore[list-item]
            stop_after = False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop_after = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            with self._busy:
                self._execute(conn, batch)
            if stop_after:
                break
        conn.close()

    def _execute(
        self,
        conn: sqlite3.Connection,
        batch: list[_Item],
        deliver: Callable[[list[_Outcome]], None] | None = None,
    ) -> None:
        """Run a batch in one transaction.

        Fast path: every operation runs bare. Operations almost never fail, and a
        SAVEPOINT around each one doubled the per-operation cost. If one does fail, the
        whole transaction is rolled back and the batch is replayed with a SAVEPOINT per
        operation, so only the failing one loses its write (operations are plain
        functions of the connection, safe to run again after a rollback).
        """
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes, failed = self._run_bare(conn, batch)
            if failed:
                conn.execute("ROLLBACK")  # drop the failing operation's partial writes
                if len(batch) == 1:
                    (deliver or functools.partial(self._deliver, batch))(outcomes)
                    return
                conn.execute("BEGIN IMMEDIATE")
                outcomes = self._run_isolated(conn, batch)
            conn.execute("COMMIT")
            self.commits += 1
        except BaseException as exc:  # the commit itself failed: nobody's write is durable
            log.exception("sqlite transaction failed")
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(future, None, exc) for _, future, _ in batch]
        (deliver or functools.partial(self._deliver, batch))(outcomes)

    @staticmethod
    def _run_bare(conn: sqlite3.Connection, batch: list[_Item]) -> tuple[list[_Outcome], bool]:
        outcomes: list[_Outcome] = []
        for fn, future, _ in batch:
            try:
                outcomes.append((future, fn(conn), None))
            except BaseException as exc:  # LeaseLost is a BaseException by design
                return [(future, None, exc)], True
        return outcomes, False

    @staticmethod
    def _run_isolated(conn: sqlite3.Connection, batch: list[_Item]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        for fn, future, _ in batch:
            conn.execute("SAVEPOINT op")
            try:
                outcomes.append((future, fn(conn), None))
            except BaseException as exc:
                conn.execute("ROLLBACK TO op")
                outcomes.append((future, None, exc))
            conn.execute("RELEASE op")
        return outcomes

    @staticmethod
    def _deliver(batch: list[_Item], outcomes: list[_Outcome]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for (_, _, loop), outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append(outcome)
        for loop, results in by_loop.items():
            # RuntimeError: that event loop is closed; its callers are gone
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, results)


def _resolve(results: list[_Outcome]) -> None:
    for future, value, error in results:
        if future.done():
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)
