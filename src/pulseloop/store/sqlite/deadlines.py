"""Run deadlines in SQLite (see :class:`~pulseloop.store.base.RunDeadlines`).

A due deadline fails an unfinished run exactly as a cancel would (status ``failed`` with
the ``RunTimeout`` error, lease cleared so its worker's next fenced write is refused, its
waits dropped), whether it is queued, running, parked or paused. Deadlines of runs that
finished first are cleared when they come due: each index entry is read once, so the
timer pass never rereads history.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from pulseloop.store.refusals import UNFINISHED
from pulseloop.store.sqlite import outbox
from pulseloop.store.sqlite.children import run_ended

BATCH = 500
"""Due deadlines handled per transaction; more due means the next pass comes at once."""


class SqliteDeadlines:
    """The deadline half of :class:`~pulseloop.store.sqlite.store.SqliteStore`."""

    async def _run(self, fn: Any) -> Any:  # provided by SqliteStore
        raise NotImplementedError

    async def expire_deadlines(
        self, org: str, now: float, error: dict[str, Any]
    ) -> tuple[list[str], float | None]:
        error_text = json.dumps(error)

        def op(conn: sqlite3.Connection) -> tuple[list[str], float | None]:
            return expire_deadlines_in(conn, org, now, error_text)

        result: tuple[list[str], float | None] = await self._run(op)
        return result


def expire_deadlines_in(
    conn: sqlite3.Connection, org: str, now: float, error_text: str
) -> tuple[list[str], float | None]:
    """``expire_deadlines`` within the caller's transaction (``error`` as JSON text)."""
    due = conn.execute(
        "SELECT run_key, status FROM runs WHERE org = ? AND deadline_at IS NOT NULL "
        "AND deadline_at <= ? ORDER BY deadline_at LIMIT ?",
        (org, now, BATCH),
    ).fetchall()
    failed = [key for key, status in due if status in UNFINISHED]
    for key in failed:
        conn.execute(
            "UPDATE runs SET status = 'failed', error = ?, finished_at = ?, "
            "updated_at = ?, wake_at = NULL, lease_owner = NULL, "
            "lease_expires_at = NULL WHERE run_key = ?",
            (error_text, now, now, key),
        )
        conn.execute("DELETE FROM waits WHERE run_id = ?", (key,))
        outbox.run_ended(conn, key, "failed")
        run_ended(conn, key, now)
    conn.executemany(
        "UPDATE runs SET deadline_at = NULL WHERE run_key = ?", [(key,) for key, _ in due]
    )
    row = conn.execute(
        "SELECT min(deadline_at) FROM runs WHERE org = ? AND deadline_at IS NOT NULL",
        (org,),
    ).fetchone()
    return failed, None if row is None else row[0]
