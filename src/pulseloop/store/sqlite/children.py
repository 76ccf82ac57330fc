"""Child runs in SQLite (see :class:`~pulseloop.store.protocols.ChildRuns`).

The single writer makes each call one transaction with nothing racing it; the SQL is the
shared :mod:`pulseloop.store.family`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pulseloop.store import family as sql
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
from pulseloop.store.sql import lite


def run_ended(conn: sqlite3.Connection, run_key: str, now: float) -> None:
    """After a run's terminal transition, in its transaction: signal (and maybe wake) its
    parent, cancel its unfinished descendants. Does nothing for a run still going."""
    conn.execute(lite(sql.ANSWER_PARENT), (run_key, child_signal_key(run_key)))
    conn.execute(lite(sql.WAKE_PARENT), (now, run_key))
    conn.execute(lite(sql.DROP_TREE_WAITS), (run_key,))
    conn.execute(lite(sql.CANCEL_TREE), (run_key, now, now))
    conn.execute(lite(sql.TREE_OUTBOX), sql.tree_outbox_params(run_key, now))


class SqliteChildren:
    """The child-run half of :class:`~pulseloop.store.sqlite.store.SqliteStore`."""

    async def _run(self, fn: Any) -> Any:  # provided by SqliteStore
        raise NotImplementedError

    async def start_child(
        self, lease: Lease, child: ChildStart, wait: WaitRecord
    ) -> tuple[RunRecord, bool]:
        def op(conn: sqlite3.Connection) -> tuple[RunRecord, bool]:
            parent = conn.execute(lite(sql.PARENT_FENCE), (lease.run_id, lease.worker)).fetchone()
            if parent is None:
                raise LeaseLost(lease.run_id)
            org, parent_id = parent
            conn.execute(
                "UPDATE runs SET history_len = 1 WHERE run_key = ? AND history_len = 0",
                (lease.run_id,),
            )
            found = conn.execute(lite(sql.CHILD_ROW), (org, child.run_id)).fetchone()
            if found is None:
                taken = conn.execute("SELECT 1 FROM runs WHERE run_key = ?", (child.run_id,))
                key = child.run_id
                if taken.fetchone() is not None:  # another organization's run has this key
                    key = fallback_run_key(org, child.run_id)
                params = sql.insert_child_params(org, key, (lease.run_id, parent_id), child)
                conn.execute(lite(sql.INSERT_CHILD), params)
                found = conn.execute(lite(sql.CHILD_ROW), (org, child.run_id)).fetchone()
            record, ours = sql.child_row(found, lease.run_id, child.step)
            conn.execute(lite(sql.UPSERT_CHILD_WAIT), sql.child_wait(wait, record))
            return record, ours

        result: tuple[RunRecord, bool] = await self._run(op)
        return result

    async def run_family(self, org: str, run_id: str, limit: int = 500) -> RunFamily | None:
        def op(conn: sqlite3.Connection) -> RunFamily | None:
            row = conn.execute(lite(sql.FAMILY_OF), (org, run_id)).fetchone()
            if row is None:
                return None
            rows = conn.execute(lite(sql.DESCENDANTS), (row[0], limit)).fetchall()
            return sql.family(row, rows)

        result: RunFamily | None = await self._run(op)
        return result
