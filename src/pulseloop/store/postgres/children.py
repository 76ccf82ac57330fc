"""Child runs on PostgreSQL (see :class:`~pulseloop.store.protocols.ChildRuns`).

The shared SQL of :mod:`pulseloop.store.family`. Locks: a run's end locks its own row
(the fence or the operator's lock) and then its parent's before signalling, as every
signal producer does, so a parent parking at that moment sees the signal or is woken by
it (``postgres/runs.py``). A cancel cascading down while a child ends locks the two rows
in the other order; PostgreSQL breaks that deadlock and the loser's batch is rerun.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from pulseloop.store import family as sql
from pulseloop.store.postgres.writer import Statement
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
from pulseloop.store.sqlite.rows import WAIT_COLUMNS, wait_to_row

Conn = psycopg.AsyncConnection[Any]
T = TypeVar("T")


def ended_statements(run_key: str, now: float) -> tuple[Statement, ...]:
    """What a run's terminal transition adds to its transaction (after its own update):
    lock, signal and maybe wake its parent; cancel its unfinished descendants. Each does
    nothing for a run still going, so a rerun batch or a lost lease changes nothing."""
    return (
        Statement(sql.LOCK_PARENT, (run_key,)),
        Statement(sql.SIGNAL_PARENT, (now, run_key)),
        Statement(sql.WAKE_PARENT, (now, run_key)),
        Statement(sql.DROP_TREE_WAITS, (run_key,)),
        Statement(sql.CANCEL_TREE, (run_key, now, now)),
    )


async def run_ended(conn: Conn, run_key: str, now: float) -> None:
    """:func:`ended_statements` inside an operator's or the timer pass's transaction."""
    for statement in ended_statements(run_key, now):
        await conn.execute(statement.sql, statement.params)


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

    async def start_child(
        self, lease: Lease, child: ChildStart, wait: WaitRecord
    ) -> tuple[RunRecord, bool]:
        async def op(conn: Conn) -> tuple[RunRecord, bool]:
            fence = await conn.execute(
                f"{sql.PARENT_FENCE} FOR NO KEY UPDATE", (lease.run_id, lease.worker)
            )
            parent = await fence.fetchone()
            if parent is None:
                raise LeaseLost(lease.run_id)
            org, parent_id = parent
            await conn.execute(
                "UPDATE runs SET history_len = 1 WHERE run_key = %s AND history_len = 0",
                (lease.run_id,),
            )
            insert = f"{sql.INSERT_CHILD} ON CONFLICT DO NOTHING"
            for key in (child.run_id, fallback_run_key(org, child.run_id)):
                found = await (await conn.execute(sql.CHILD_ROW, (org, child.run_id))).fetchone()
                if found is not None:
                    break
                params = sql.insert_child_params(org, key, (lease.run_id, parent_id), child)
                await conn.execute(insert, params)  # the id's key may be another org's
            found = await (await conn.execute(sql.CHILD_ROW, (org, child.run_id))).fetchone()
            assert found is not None
            record, ours = sql.child_row(found, lease.run_id, child.step)
            await conn.execute(
                f"INSERT INTO waits ({WAIT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                wait_to_row(dataclasses.replace(wait, key=child_signal_key(record.key))),
            )
            if ours:
                await conn.execute(
                    sql.CONSUME_CHILD_SIGNALS,
                    (child.step, lease.run_id, child_signal_key(record.key)),
                )
            return record, ours

        return await self._tx(op, notify=lease.org or None)

    async def run_family(self, org: str, run_id: str, limit: int = 500) -> RunFamily | None:
        async def op(conn: Conn) -> RunFamily | None:
            row = await (await conn.execute(sql.FAMILY_OF, (org, run_id))).fetchone()
            if row is None:
                return None
            rows = await (await conn.execute(sql.DESCENDANTS, (row[0], limit))).fetchall()
            return sql.family(row, rows)

        return await self._tx(op, read_only=True)
