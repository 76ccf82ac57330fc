"""Flow control in SQLite: concurrency slots at trigger and claim time, rate permits.

SQLite has one writer, so a claim that reads a key's free slots and takes that many
queued runs in one transaction cannot race another claim; the slot counts themselves
are kept by triggers (migration 0014), whatever path changes a run's status.
"""

from __future__ import annotations

import sqlite3
from typing import Any


def ensure_slot(conn: sqlite3.Connection, org: str, key: str, loop: str, limit: int) -> None:
    """Create the key's slot row (before its run is inserted: the insert trigger counts the
    run in it), or update its limit to the loop's current one."""
    conn.execute(
        "INSERT INTO concurrency_slots (org, key, loop, lim) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (org, key) DO UPDATE SET lim = excluded.lim",
        (org, key, loop, limit),
    )


def keyed_candidates(
    conn: sqlite3.Connection, org: str, loops: list[str], limit: int, run_id: str | None
) -> list[str]:
    """Ids of queued keyed runs a claim may take now: for each key with room (least
    recently served first, at most ``limit`` keys), its oldest runs up to the free slots.

    Reads the open keys through their partial index and each key's queued runs through
    ``runs_keyed``: O(batch), whatever is queued behind full keys or finished long ago.
    """
    marks = ", ".join("?" for _ in loops)
    if run_id is not None:  # a one-run worker (trigger --wait): that run, if its key has room
        rows = conn.execute(
            "SELECT r.id FROM runs r JOIN concurrency_slots s "
            "ON s.org = r.org AND s.key = r.flow_key "
            f"WHERE r.org = ? AND r.id = ? AND r.loop IN ({marks}) AND r.status = 'queued' "
            "AND s.held < s.lim",
            (org, run_id, *loops),
        )
        return [r[0] for r in rows]
    slots = conn.execute(
        "SELECT key, lim - held FROM concurrency_slots INDEXED BY concurrency_open "
        f"WHERE org = ? AND queued > 0 AND held < lim AND loop IN ({marks}) "
        "ORDER BY served_at LIMIT ?",
        (org, *loops, limit),
    ).fetchall()
    found: list[str] = []
    for key, free in slots:
        rows = conn.execute(
            "SELECT id FROM runs INDEXED BY runs_keyed WHERE org = ? AND flow_key = ? "
            "AND status = 'queued' ORDER BY priority DESC, created_at, id LIMIT ?",
            (org, key, min(free, limit)),
        )
        found += [r[0] for r in rows]
    return found


def take_permit(
    conn: sqlite3.Connection, org: str, key: str, limit: int, period_s: float, now: float
) -> float | None:
    """Grant a permit (None) if fewer than ``limit`` were granted in the last ``period_s``;
    else the time the oldest of them leaves the window (when to try again)."""
    conn.execute(
        "DELETE FROM rate_permits WHERE org = ? AND key = ? AND at <= ?",
        (org, key, now - period_s),
    )
    count, oldest = conn.execute(
        "SELECT count(*), min(at) FROM rate_permits WHERE org = ? AND key = ?", (org, key)
    ).fetchone()
    if count >= limit:
        return float(oldest) + period_s
    conn.execute("INSERT INTO rate_permits (org, key, at) VALUES (?, ?, ?)", (org, key, now))
    return None


class SqliteRates:
    """The rate-limit half of :class:`~pulseloop.store.sqlite.store.SqliteStore`."""

    async def _run(self, fn: Any) -> Any:  # provided by SqliteStore
        raise NotImplementedError

    async def take_permit(
        self, org: str, key: str, limit: int, period_s: float, now: float
    ) -> float | None:
        """See :meth:`pulseloop.store.protocols.RateLimits.take_permit`."""

        def op(conn: sqlite3.Connection) -> float | None:
            return take_permit(conn, org, key, limit, period_s, now)

        result: float | None = await self._run(op)
        return result
