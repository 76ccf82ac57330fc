"""The timer pass in SQLite (see :class:`~pulseloop.store.protocols.TimerPass`): due
timers and scan expiries, due schedule ticks and due run deadlines in one transaction.

Each part is the function its own store method runs (``fire_timers_in``,
:func:`~pulseloop.store.sqlite.schedules.fire_schedules_in`,
:func:`~pulseloop.store.sqlite.deadlines.expire_deadlines_in`), so the merged pass and
the three separate calls cannot drift apart; each reads only what is due through its
index (``tests/store/test_flat_history.py``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from pulseloop.store.base import Firing, ScheduleRecord, TimerOutcome
from pulseloop.store.sqlite import scans
from pulseloop.store.sqlite.deadlines import expire_deadlines_in
from pulseloop.store.sqlite.schedules import fire_schedules_in


def fire_timers_in(conn: sqlite3.Connection, org: str, now: float) -> tuple[int, float | None]:
    """``fire_timers`` within the caller's transaction."""
    expired, next_expiry = scans.expire_due(conn, org, now)
    fired = conn.execute(
        "UPDATE runs SET status = 'queued', wake_at = NULL, updated_at = ? "
        "WHERE org = ? AND status = 'waiting' AND wake_at <= ?",
        (now, org, now),
    ).rowcount
    (next_wake,) = conn.execute(
        "SELECT min(wake_at) FROM runs WHERE org = ? AND status = 'waiting'", (org,)
    ).fetchone()
    upcoming = [t for t in (next_wake, next_expiry) if t is not None]
    return fired + expired, min(upcoming, default=None)


class SqliteTimerPass:
    """The timer-pass part of :class:`~pulseloop.store.sqlite.store.SqliteStore`."""

    async def _run(self, fn: Any) -> Any:  # provided by SqliteStore
        raise NotImplementedError

    async def timer_pass(
        self,
        org: str,
        now: float,
        plan: Callable[[ScheduleRecord], Firing],
        limit: int,
        deadline_error: dict[str, Any],
    ) -> TimerOutcome:
        error_text = json.dumps(deadline_error)

        def op(conn: sqlite3.Connection) -> TimerOutcome:
            fired, next_wake = fire_timers_in(conn, org, now)
            started, next_tick = fire_schedules_in(conn, org, now, plan, limit)
            timed_out, next_deadline = expire_deadlines_in(conn, org, now, error_text)
            upcoming = [t for t in (next_wake, next_tick, next_deadline) if t is not None]
            return TimerOutcome(fired, started, tuple(timed_out), min(upcoming, default=None))

        result: TimerOutcome = await self._run(op)
        return result
