"""Flow control in SQLite: concurrency slots at trigger and claim time, rate permits.

SQLite has one writer, so a claim that reads a key's free slots and takes that many
queued runs in one transaction cannot race another claim; the slot counts themselves
are kept by triggers (migration 0014), whatever path changes a run's status.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from pulseloop.store.records import RunRecord, TriggerWindow, fallback_run_key, window_open
from pulseloop.store.sqlite.rows import RUN_COLUMNS, run_from_row


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


class SqliteFlow:
    """The flow-control part of :class:`~pulseloop.store.sqlite.store.SqliteStore`: rate
    permits and trigger windows."""

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

    async def create_run_windowed(
        self,
        org: str,
        run_id: str,
        loop: str,
        input_for: Callable[[str], str],
        now: float,
        window: TriggerWindow,
        deadline_at: float | None = None,
        trace_parent: str | None = None,
        *,
        priority: int = 0,
        flow_key: str | None = None,
        flow_limit: int = 0,
    ) -> tuple[RunRecord, bool]:
        """See :meth:`pulseloop.store.protocols.TriggerWindows.create_run_windowed`."""

        def op(conn: sqlite3.Connection) -> tuple[RunRecord, bool]:
            return windowed_run(
                conn, org, run_id, loop, input_for, now, window, deadline_at, trace_parent,
                priority, flow_key, flow_limit,
            )  # fmt: skip

        result: tuple[RunRecord, bool] = await self._run(op)
        return result


def windowed_run(
    conn: sqlite3.Connection,
    org: str,
    run_id: str,
    loop: str,
    input_for: Callable[[str], str],
    now: float,
    window: TriggerWindow,
    deadline_at: float | None,
    trace_parent: str | None,
    priority: int,
    flow_key: str | None,
    flow_limit: int,
) -> tuple[RunRecord, bool]:
    """A trigger inside a debounce or dedupe window (see ``RunStore.create_run_windowed``)."""
    where = "org = ? AND loop = ? AND kind = ? AND key = ?"
    ident = (org, loop, window.kind, window.key)
    select = f"SELECT {RUN_COLUMNS} FROM runs WHERE org = ? AND id = ?"
    until = now + window.seconds
    row = conn.execute(f"SELECT run_id, until FROM trigger_windows WHERE {where}", ident)
    found = row.fetchone()
    if found is not None:
        prior = conn.execute(select, (org, found[0])).fetchone()
        run = None if prior is None else run_from_row(prior)
        if run is not None and window.kind == "dedupe" and found[1] > now:
            return run, False
        if run is not None and window.kind == "debounce" and window_open(run):
            conn.execute(
                "UPDATE runs SET input = ?, wake_at = ?, updated_at = ? WHERE run_key = ?",
                (input_for(run.id), until, now, run.key),
            )
            conn.execute(f"UPDATE trigger_windows SET until = ? WHERE {where}", (until, *ident))
            return run_from_row(conn.execute(select, (org, run.id)).fetchone()), False
    existing = conn.execute(select, (org, run_id)).fetchone()
    if existing is not None:  # an idempotent trigger: the run this id already names
        return run_from_row(existing), False
    taken = conn.execute("SELECT 1 FROM runs WHERE run_key = ?", (run_id,)).fetchone()
    key = run_id if taken is None else fallback_run_key(org, run_id)
    if flow_key is not None:
        ensure_slot(conn, org, flow_key, loop, flow_limit)
    debounced = window.kind == "debounce"
    conn.execute(
        "INSERT INTO runs (org, id, loop, status, input, created_at, updated_at, run_key, "
        "deadline_at, trace_parent, priority, flow_key, wake_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (org, run_id, loop, "waiting" if debounced else "queued", input_for(run_id), now, now,
         key, deadline_at, trace_parent, priority, flow_key, until if debounced else None),
    )  # fmt: skip
    conn.execute(
        "INSERT INTO trigger_windows (org, loop, kind, key, run_id, until) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (org, loop, kind, key) "
        "DO UPDATE SET run_id = excluded.run_id, until = excluded.until",
        (*ident, run_id, until),
    )
    return run_from_row(conn.execute(select, (org, run_id)).fetchone()), True
