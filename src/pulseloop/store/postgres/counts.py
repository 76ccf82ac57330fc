"""``/metrics`` totals on PostgreSQL: status changes appended by triggers, folded later.

Design record (the migration ``0017_observability.postgres.sql`` has the triggers).
Considered and rejected: ``count(*) GROUP BY`` at each scrape (reads every run ever kept:
a scrape's cost grows with history); counters updated in place by triggers, as SQLite
does (every worker's status changes would queue on the same few rows until commit, and
two transactions changing statuses in opposite orders deadlock). Here a status change
only inserts into ``status_deltas``; :func:`fold` moves the deltas into
``status_counts`` in one transaction, one process at a time (a try-lock: a second folder
skips rather than waits). A scrape folds, then reads the totals plus any deltas not
folded yet, so its answer is exact and its cost is the statuses plus the changes since
the last fold. Each open store also folds every :data:`FOLD_EVERY_S`, so a deployment
nobody scrapes keeps the delta table small.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[Any]

FOLD_EVERY_S = 60.0
"""Between background folds in each process that has the store open."""

_FOLD_LOCK = "hashtextextended('pulseloop-status-counts', 0)"
FOLD = (
    "WITH folded AS (DELETE FROM status_deltas RETURNING kind, status, n) "
    "INSERT INTO status_counts (kind, status, n) "
    "SELECT kind, status, sum(n) FROM folded GROUP BY kind, status ORDER BY kind, status "
    "ON CONFLICT (kind, status) DO UPDATE SET n = status_counts.n + excluded.n"
)
TOTALS = (
    "SELECT kind, status, sum(n) FROM (SELECT kind, status, n FROM status_counts "
    "UNION ALL SELECT kind, status, n FROM status_deltas) AS all_counts GROUP BY kind, status"
)
"""Folded totals plus the deltas not folded yet: one snapshot, so always exact."""


async def fold(conn: Conn) -> bool:
    """Fold the deltas into the totals unless another transaction is folding (False)."""
    cur = await conn.execute(f"SELECT pg_try_advisory_xact_lock({_FOLD_LOCK})")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return False
    await conn.execute(FOLD)
    return True


async def totals(conn: Conn) -> dict[str, dict[str, int]]:
    """``{"run": {status: n}, "scan": {status: n}}``, exact at this statement's snapshot."""
    counts: dict[str, dict[str, int]] = {"run": {}, "scan": {}}
    cur = await conn.execute(TOTALS)
    for kind, status, n in await cur.fetchall():
        counts[str(kind)][str(status)] = int(n)
    return counts


class Folder:
    """Folds every :data:`FOLD_EVERY_S` while the store is open."""

    def __init__(self, tx: Callable[[Callable[[Conn], Awaitable[bool]]], Awaitable[bool]]) -> None:
        self._tx = tx
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin folding in the background (the first fold after one interval)."""
        self._task = asyncio.create_task(self._loop(), name="pulseloop-fold-counts")

    async def stop(self) -> None:
        """Stop folding."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(FOLD_EVERY_S)
            try:
                await self._tx(fold)
            except Exception:  # the database is away: the next interval retries
                log.warning("folding the /metrics counters failed; will retry", exc_info=True)
