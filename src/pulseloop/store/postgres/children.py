"""Child runs on PostgreSQL (see :class:`~pulseloop.store.protocols.ChildRuns`).

The shared SQL of :mod:`pulseloop.store.family`. Locks: a run's end locks its own row
(the fence or the operator's lock) and then its parent's before signalling, as every
signal producer does, so a parent parking at that moment sees the signal or is woken by
it (``postgres/runs.py``). A cancel cascading down while a child ends locks the two rows
in the other order; PostgreSQL breaks that deadlock and the loser's batch is rerun.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from pulseloop.store import family as sql
from pulseloop.store.postgres.writer import Rows, Statement, Write, Writer
from pulseloop.store.records import (
    ChildStart,
    Lease,
    LeaseLost,
    RunFamily,
    RunRecord,
    WaitRecord,
    child_signal_key,
    fallback_run_key,
)
from pulseloop.store.sqlite.rows import RUN_COLUMNS

Conn = psycopg.AsyncConnection[Any]
T = TypeVar("T")


def ended_statements(run_key: str, now: float) -> tuple[Statement, ...]:
    """What a run's terminal transition adds to its transaction (after its own update):
    lock, signal and maybe wake its parent; cancel its unfinished descendants. Each does
    nothing for a run still going, so a rerun batch or a lost lease changes nothing."""
    return (
        Statement(sql.LOCK_PARENT, (run_key,)),
        Statement(sql.ANSWER_PARENT, (run_key, child_signal_key(run_key))),
        Statement(sql.WAKE_PARENT, (now, run_key)),
        Statement(sql.DROP_TREE_WAITS, (run_key,)),
        Statement(sql.CANCEL_TREE, (run_key, now, now)),
        Statement(sql.TREE_OUTBOX, sql.tree_outbox_params(run_key, now)),
    )


async def run_ended(conn: Conn, run_key: str, now: float) -> None:
    """:func:`ended_statements` inside an operator's or the timer pass's transaction."""
    for statement in ended_statements(run_key, now):
        await conn.execute(statement.sql, statement.params)


_HELD_PARENT = "FROM runs p WHERE p.run_key = %(run)s AND p.lease_owner = %(worker)s"
_INSERT_CHILD = (
    "INSERT INTO runs (org, id, loop, status, input, created_at, updated_at, run_key, "
    "deadline_at, parent_key, parent_id, parent_step, trace_parent) SELECT p.org, "
    "%(child)s::text, "
    "%(loop)s::text, 'queued', %(input)s::text, %(now)s::float8, %(now)s::float8, "
    f"%(key)s::text, %(deadline)s::float8, p.run_key, p.id, %(step)s::text, "
    f"%(trace)s::text {_HELD_PARENT} "
    "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.org = p.org AND r.id = %(child)s::text) "
    "ON CONFLICT DO NOTHING"
)
_UPSERT_WAIT = (
    "INSERT INTO waits (run_id, name, seq, kind, key, deadline_at, created_at) "
    "SELECT p.run_key, %(name)s::text, %(seq)s::int, CASE WHEN c.status IN "
    "('completed', 'failed', 'cancelled') THEN 'child-ended' ELSE 'child' END, "
    "'child:' || c.run_key, %(wait_at)s::float8, %(wait_created)s::float8 "
    "FROM runs p JOIN runs c ON c.org = p.org AND c.id = %(child)s::text "
    "WHERE p.run_key = %(run)s AND p.lease_owner = %(worker)s "
    "ON CONFLICT (run_id, name) DO UPDATE SET kind = excluded.kind"
)


def start_write(lease: Lease, child: ChildStart, wait: WaitRecord) -> Write[tuple[RunRecord, bool]]:
    """``start_child`` as one fenced write of the group commit: the child under its id as
    key, else (another organization's run has that key) under the fallback key, then the
    parent's wait with its kind from the child's status, then the child as stored."""
    c = child
    params = {
        "run": lease.run_id, "worker": lease.worker, "child": c.run_id, "loop": c.loop,
        "input": c.input, "now": c.created_at, "deadline": c.deadline_at, "step": c.step,
        "trace": c.trace_parent,
        "name": wait.name, "seq": wait.seq, "wait_at": wait.deadline_at,
        "wait_created": wait.created_at,
    }  # fmt: skip
    fallback = {**params, "key": fallback_run_key(lease.org, c.run_id)}
    statements = (
        Statement(
            "SELECT status FROM runs WHERE run_key = %(run)s AND lease_owner = %(worker)s "
            "FOR NO KEY UPDATE",
            params,
        ),
        Statement(
            "UPDATE runs SET history_len = 1 WHERE run_key = %(run)s "
            "AND lease_owner = %(worker)s AND history_len = 0",
            params,
        ),
        Statement(_INSERT_CHILD, {**params, "key": c.run_id}),
        Statement(_INSERT_CHILD, fallback),
        Statement(_UPSERT_WAIT, params),
        Statement(
            f"SELECT {RUN_COLUMNS}, parent_key, parent_step FROM runs WHERE id = %(child)s "
            "AND org = (SELECT org FROM runs WHERE run_key = %(run)s)",
            params,
        ),
    )

    def result(rows: list[Rows]) -> tuple[RunRecord, bool]:
        if not rows[0]:
            raise LeaseLost(lease.run_id)
        return sql.child_row(rows[-1][0], lease.run_id, c.step)

    return Write(statements, result, lease=lease, notify=True)


class PostgresChildren:
    """The child-run half of :class:`~pulseloop.store.postgres.store.PostgresStore`."""

    async def _tx(  # provided by PostgresStore
        self,
        fn: Callable[[Conn], Awaitable[T]],
        *,
        idempotent: bool = True,
        notify: str | None = None,
        read_only: bool = False,
    ) -> T:
        raise NotImplementedError

    _writer: Writer  # provided by PostgresStore

    async def start_child(
        self, lease: Lease, child: ChildStart, wait: WaitRecord
    ) -> tuple[RunRecord, bool]:
        return await self._writer.run(start_write(lease, child, wait))

    async def run_family(self, org: str, run_id: str, limit: int = 500) -> RunFamily | None:
        async def op(conn: Conn) -> RunFamily | None:
            row = await (await conn.execute(sql.FAMILY_OF, (org, run_id))).fetchone()
            if row is None:
                return None
            rows = await (await conn.execute(sql.DESCENDANTS, (row[0], limit))).fetchall()
            return sql.family(row, rows)

        return await self._tx(op, read_only=True)
