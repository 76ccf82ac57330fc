"""The timer pass on PostgreSQL (see :class:`~pulseloop.store.protocols.TimerPass`): due
timers and scan expiries, due schedule ticks and due run deadlines in one transaction.

Each part is the function its own store method runs, so the merged pass and the three
separate calls cannot drift apart. Rows another worker is firing are skipped as in each
part (``FOR UPDATE SKIP LOCKED``); one transaction instead of three saves two pool
checkouts and two BEGIN/COMMIT round trips per pass.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from pulseloop.store.base import Firing, ScheduleRecord, TimerOutcome
from pulseloop.store.postgres import scans
from pulseloop.store.postgres.deadlines import expire_deadlines_in
from pulseloop.store.postgres.schedules import fire_schedules_in
from pulseloop.store.postgres.wakeups import Notifier

Conn = psycopg.AsyncConnection[Any]
T = TypeVar("T")


async def fire_timers_in(conn: Conn, org: str, now: float) -> tuple[int, float | None]:
    """``fire_timers`` within the caller's transaction."""
    expired, next_expiry = await scans.expire_due(conn, org, now)
    cur = await conn.execute(
        "UPDATE runs SET status = 'queued', wake_at = NULL, updated_at = %s "
        "WHERE org = %s AND status = 'waiting' AND wake_at <= %s",
        (now, org, now),
    )
    fired = max(cur.rowcount, 0)
    cur = await conn.execute(
        "SELECT min(wake_at) FROM runs WHERE org = %s AND status = 'waiting'", (org,)
    )
    row = await cur.fetchone()
    upcoming = [t for t in (row[0] if row else None, next_expiry) if t is not None]
    return fired + expired, min(upcoming, default=None)


class PostgresTimerPass:
    """The timer-pass part of :class:`~pulseloop.store.postgres.store.PostgresStore`."""

    _notifier: Notifier  # provided by PostgresStore

    async def _tx(  # provided by PostgresStore
        self,
        fn: Callable[[Conn], Awaitable[T]],
        *,
        idempotent: bool = True,
        notify: str | None = None,
        read_only: bool = False,
    ) -> T:
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

        async def op(conn: Conn) -> TimerOutcome:
            fired, next_wake = await fire_timers_in(conn, org, now)
            started, next_tick = await fire_schedules_in(conn, org, now, plan, limit)
            timed_out, next_deadline = await expire_deadlines_in(conn, org, now, error_text)
            upcoming = [t for t in (next_wake, next_tick, next_deadline) if t is not None]
            return TimerOutcome(fired, started, tuple(timed_out), min(upcoming, default=None))

        outcome = await self._tx(op)
        if outcome.started:  # as fire_schedules: other processes' workers may take them
            self._notifier.hint(org)
        return outcome
