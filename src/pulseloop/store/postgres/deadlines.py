"""Run deadlines on PostgreSQL (see :class:`~pulseloop.store.base.RunDeadlines`).

As on SQLite: a due deadline fails an unfinished run as a cancel would, and a finished
run's deadline is cleared when it comes due. Workers racing for the same due rows take
them with ``FOR UPDATE SKIP LOCKED`` (never waiting on a row an operator or the run's
own worker holds: a skipped row is simply taken on the next pass).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from pulseloop.store.postgres import outbox
from pulseloop.store.postgres.children import run_ended
from pulseloop.store.refusals import UNFINISHED

Conn = psycopg.AsyncConnection[Any]
T = TypeVar("T")
BATCH = 500
"""Due deadlines handled per transaction; more due means the next pass comes at once."""


class PostgresDeadlines:
    """The deadline half of :class:`~pulseloop.store.postgres.store.PostgresStore`."""

    async def _tx(  # provided by PostgresStore
        self,
        fn: Callable[[Conn], Awaitable[T]],
        *,
        idempotent: bool = True,
        notify: str | None = None,
        read_only: bool = False,
    ) -> T:
        raise NotImplementedError

    async def expire_deadlines(
        self, org: str, now: float, error: dict[str, Any]
    ) -> tuple[list[str], float | None]:
        error_text = json.dumps(error)

        async def op(conn: Conn) -> tuple[list[str], float | None]:
            return await expire_deadlines_in(conn, org, now, error_text)

        return await self._tx(op)


async def expire_deadlines_in(
    conn: Conn, org: str, now: float, error_text: str
) -> tuple[list[str], float | None]:
    """``expire_deadlines`` within the caller's transaction (``error`` as JSON text)."""
    cur = await conn.execute(
        "SELECT run_key, status FROM runs WHERE org = %s AND deadline_at IS NOT NULL "
        "AND deadline_at <= %s ORDER BY deadline_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (org, now, BATCH),
    )
    due = await cur.fetchall()
    failed = [key for key, status in due if status in UNFINISHED]
    if failed:
        await conn.execute(
            "UPDATE runs SET status = 'failed', error = %s, finished_at = %s, "
            "updated_at = %s, wake_at = NULL, lease_owner = NULL, "
            "lease_expires_at = NULL WHERE run_key = ANY(%s)",
            (error_text, now, now, failed),
        )
        await conn.execute("DELETE FROM waits WHERE run_id = ANY(%s)", (failed,))
        for key in failed:
            await outbox.run_ended(conn, key, "failed")
            await run_ended(conn, key, now)
    if due:
        await conn.execute(
            "UPDATE runs SET deadline_at = NULL WHERE run_key = ANY(%s)",
            ([key for key, _ in due],),
        )
    cur = await conn.execute(
        "SELECT min(deadline_at) FROM runs WHERE org = %s AND deadline_at IS NOT NULL",
        (org,),
    )
    row = await cur.fetchone()
    return failed, None if row is None else row[0]
