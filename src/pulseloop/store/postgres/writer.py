"""Group commit on PostgreSQL: a worker's fenced writes share round trips and commits.

Design record. Every step a run records must be committed before the run moves on, and a
worker holds hundreds of runs. Considered:

* **a pooled connection per write**: one round trip per statement plus one commit per
  step, and as many connections as runs in flight (connection exhaustion is the most
  reported failure of PostgreSQL-backed engines);
* **multi-row statements** (one ``INSERT ... SELECT FROM unnest(...)`` per kind): few
  statements, but each kind of write needs its own bulk form, and the fence (the lease
  check) must be proven per row inside a set operation;
* **pipeline mode on one writer connection** (chosen): one task drains a queue of
  writes and sends ``BEGIN``, every statement of every queued write, ``COMMIT`` and one
  Sync, then reads all results: N concurrent writes cost one round trip and one commit
  (one WAL flush). No caller is answered before that ``COMMIT`` has returned, and no
  connection is held while a step's callback runs: the writer's is the only one.

Fencing without a check-then-write race: each fenced write opens with
``SELECT ... FROM runs WHERE id = $run AND lease_owner = $worker FOR NO KEY UPDATE``.
Its later statements repeat that condition, so they write nothing if the lease is gone;
and because the row is locked until commit, an operator's cancel or another worker's
claim (which updates that row) waits for this commit instead of slipping in between.
Each later statement takes its snapshot after the lock was granted (READ COMMITTED takes
one per statement), so it sees anything a signal sender committed before it: senders lock
the run row first too (see ``runs.py``).

Failures. A statement error aborts the whole transaction; expected outcomes never raise
in SQL (a lost lease is an empty fence, turned into :class:`LeaseLost` after the commit),
so an error is a conflict or a bug: deadlocks and serialization failures rerun the batch,
anything else reruns each write alone so only the failing one fails. A dropped
connection (server restart, ``pg_terminate_backend``) loses the open transaction whole:
no step record is ever half-written. The writer reconnects and reruns the batch, which
is safe because every write is idempotent (steps insert ``ON CONFLICT DO NOTHING``, a
second park or finish finds the lease released and reports it lost). If the server stays
away longer than ``outage_s``, fenced writes fail with :class:`LeaseLost` (the execution
unwinds; the run is recovered once its lease expires) and others with StoreError.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.pq import TransactionStatus

from pulseloop.store.base import Lease, LeaseLost
from pulseloop.store.postgres import errors

T = TypeVar("T")
Rows = list[tuple[Any, ...]]

log = logging.getLogger(__name__)

MAX_BATCH = 256
"""Writes per transaction at most (a pipeline of ~3 statements each)."""
OUTAGE_S = 60.0
"""How long a batch waits for the server to come back before its writes fail."""
_BACKOFF_S = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement with its parameters (named ``%(x)s`` or positional ``%s``)."""

    sql: str
    params: Sequence[Any] | dict[str, Any] = ()


@dataclass(frozen=True, slots=True)
class Write(Generic[T]):
    """Statements that must commit together, and how their rows become the answer.

    ``result`` gets the rows of each statement, in order; it may raise (LeaseLost).
    Every write must be safe to run twice: a batch is rerun after a lost connection.
    """

    statements: tuple[Statement, ...]
    result: Callable[[list[Rows]], T]
    lease: Lease | None = None
    """Set for fenced writes: an outage fails them with LeaseLost."""
    notify: bool = False
    """Send a wake-up hint after the commit (the write may have made work ready)."""


@dataclass(slots=True)
class _Item:
    write: Write[Any]
    future: asyncio.Future[Any] = field(repr=False)


class Writer:
    """One connection, one task: concurrent writes committed together."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
        where: str,
        on_commit: Callable[[], None] = lambda: None,
        outage_s: float = OUTAGE_S,
    ) -> None:
        self._connect = connect
        self._where = where
        self._on_commit = on_commit
        self._outage_s = outage_s
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._queue: collections.deque[_Item] = collections.deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0
        """Transactions committed so far (a group commit counts once)."""

    async def start(self) -> None:
        """Connect and start the writer task; raises if the server cannot be reached."""
        self._conn = await self._connect()
        self._task = asyncio.create_task(self._serve(), name="pulseloop-pg-writer")

    async def stop(self) -> None:
        """Let queued writes finish, then close the connection."""
        if self._task is None:
            return
        self._closing = True
        self._ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def run(self, write: Write[T]) -> T:
        """Queue ``write``; return its result once the transaction holding it committed."""
        if self._task is None or self._closing:
            raise RuntimeError("the database is not open; use `async with App(...)`")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(write, future))
        self._ready.set()
        return await future

    async def _serve(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
            try:
                await self._commit(batch)
            except BaseException as exc:  # never let the writer die with callers waiting
                for item in batch:
                    _settle(item, None, exc if isinstance(exc, Exception) else RuntimeError())
                if not isinstance(exc, Exception):
                    raise

    async def _commit(self, batch: list[_Item]) -> None:
        """Run ``batch`` in one transaction, reconnecting and rerunning as needed."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._outage_s
        attempt = 0
        while True:
            try:
                conn = await self._connection()
                results = await _pipeline(conn, [item.write for item in batch])
            except Exception as exc:
                if errors.is_disconnect(exc, self._conn):
                    await self._drop_connection()
                    if loop.time() >= give_up_at:
                        for item in batch:
                            _settle(item, None, _unavailable(item.write, exc, self._where))
                        return
                    log.warning("PostgreSQL connection lost (%s); reconnecting", exc)
                elif errors.is_transient(exc):
                    await self._rollback()
                elif len(batch) > 1:  # one write is bad: run each alone, isolate it
                    await self._rollback()
                    for item in batch:
                        await self._commit([item])
                    return
                else:
                    await self._rollback()
                    _settle(batch[0], None, errors.translate(exc, self._where))
                    return
                await asyncio.sleep(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])
                attempt += 1
                continue
            self.commits += 1
            if any(item.write.notify for item in batch):
                self._on_commit()
            for item, rows in zip(batch, results, strict=True):
                try:
                    _settle(item, item.write.result(rows), None)
                except BaseException as exc:  # LeaseLost is a BaseException by design
                    _settle(item, None, exc)
            return

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await self._connect()
        return self._conn

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _rollback(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            if conn.info.transaction_status != TransactionStatus.IDLE:
                await conn.execute("ROLLBACK")
        except Exception:
            await self._drop_connection()


async def _pipeline(
    conn: psycopg.AsyncConnection[Any], writes: list[Write[Any]]
) -> list[list[Rows]]:
    """BEGIN, every statement, COMMIT, one Sync; then every statement's rows."""
    cursors: list[list[psycopg.AsyncCursor[Any]]] = []
    async with conn.pipeline() as pipeline:
        await conn.execute("BEGIN")
        for write in writes:
            mine = []
            for statement in write.statements:
                cursor = conn.cursor()
                await cursor.execute(statement.sql, statement.params)
                mine.append(cursor)
            cursors.append(mine)
        await conn.execute("COMMIT")
        await pipeline.sync()
        return [[await _rows(c) for c in mine] for mine in cursors]


async def _rows(cursor: psycopg.AsyncCursor[Any]) -> Rows:
    if cursor.description is None:
        return []
    return list(await cursor.fetchall())


def _unavailable(write: Write[Any], exc: BaseException, where: str) -> BaseException:
    if write.lease is not None:
        return LeaseLost(write.lease.run_id)
    return errors.translate(exc, where)


def _settle(item: _Item, value: Any, error: BaseException | None) -> None:
    if item.future.done():
        return
    if error is None:
        item.future.set_result(value)
    else:
        item.future.set_exception(error)
