"""Schedule rows in SQLite (see :class:`~pulseloop.store.base.ScheduleStore`).

SQLite has one writer, so the due-check and the tick's run insert need no row locks:
the claim, the insert and the advance of ``next_fire_at`` are one transaction on the
database thread, and no other process can fire the same tick in between. The run id of
a tick is fixed by the schedule and the tick time, and inserting an id that exists
changes nothing, so even a tick fired twice starts one run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from pulseloop.store.base import Firing, ScheduleRecord, fallback_run_key

SCHEDULE_COLUMNS = (
    "org, id, loop, cron, tz, body, missed, start_at, end_at, paused, next_fire_at, "
    "last_fire_at, last_run_id, source, created_at, updated_at"
)
_SELECT = f"SELECT {SCHEDULE_COLUMNS} FROM schedules"


def schedule_from_row(row: tuple[Any, ...]) -> ScheduleRecord:
    """A ``SELECT SCHEDULE_COLUMNS`` row as a record (``paused`` as a bool)."""
    values = list(row)
    values[9] = bool(values[9])
    return ScheduleRecord(*values)


def insert_tick_run(
    conn: sqlite3.Connection,
    org: str,
    run_id: str,
    loop: str,
    input_json: str,
    now: float,
    deadline_at: float | None,
    trace_parent: str | None = None,
) -> bool:
    """Insert the queued run of a tick unless ``run_id`` exists in ``org``; True if new."""
    if conn.execute("SELECT 1 FROM runs WHERE org = ? AND id = ?", (org, run_id)).fetchone():
        return False
    taken = conn.execute("SELECT 1 FROM runs WHERE run_key = ?", (run_id,)).fetchone()
    key = run_id if taken is None else fallback_run_key(org, run_id)
    conn.execute(
        "INSERT INTO runs (org, id, loop, status, input, created_at, updated_at, run_key, "
        "deadline_at, trace_parent) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
        (org, run_id, loop, input_json, now, now, key, deadline_at, trace_parent),
    )
    return True


def _input(schedule: ScheduleRecord, firing: Firing) -> str:
    """The input of the tick's run: the plan's, else the schedule's body as stored."""
    return schedule.body if firing.run_input is None else firing.run_input


class SqliteSchedules:
    """The schedule half of :class:`~pulseloop.store.sqlite.store.SqliteStore`."""

    async def _run(self, fn: Any) -> Any:  # provided by SqliteStore
        raise NotImplementedError

    async def put_schedule(self, record: ScheduleRecord) -> ScheduleRecord:
        r = record

        def op(conn: sqlite3.Connection) -> ScheduleRecord:
            conn.execute(
                f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (org, id) DO UPDATE SET loop = excluded.loop, "
                "body = excluded.body, missed = excluded.missed, source = excluded.source, "
                "updated_at = excluded.updated_at, next_fire_at = CASE "
                "WHEN schedules.paused THEN NULL "
                "WHEN schedules.cron = excluded.cron AND schedules.tz = excluded.tz "
                "AND schedules.start_at IS excluded.start_at "
                "AND schedules.end_at IS excluded.end_at THEN schedules.next_fire_at "
                "ELSE excluded.next_fire_at END, "
                "cron = excluded.cron, tz = excluded.tz, start_at = excluded.start_at, "
                "end_at = excluded.end_at",
                (r.org, r.id, r.loop, r.cron, r.tz, r.body, r.missed, r.start_at, r.end_at,
                 int(r.paused), r.next_fire_at, r.last_fire_at, r.last_run_id, r.source,
                 r.created_at, r.updated_at),
            )  # fmt: skip
            row = conn.execute(f"{_SELECT} WHERE org = ? AND id = ?", (r.org, r.id)).fetchone()
            return schedule_from_row(row)

        result: ScheduleRecord = await self._run(op)
        return result

    async def get_schedule(self, org: str, schedule_id: str) -> ScheduleRecord | None:
        def op(conn: sqlite3.Connection) -> ScheduleRecord | None:
            row = conn.execute(f"{_SELECT} WHERE org = ? AND id = ?", (org, schedule_id))
            found = row.fetchone()
            return None if found is None else schedule_from_row(found)

        result: ScheduleRecord | None = await self._run(op)
        return result

    async def list_schedules(
        self, org: str, *, loop: str | None = None, limit: int = 200
    ) -> list[ScheduleRecord]:
        where, params = "org = ?", [org]
        if loop is not None:
            where, params = "org = ? AND loop = ?", [org, loop]

        def op(conn: sqlite3.Connection) -> list[ScheduleRecord]:
            rows = conn.execute(f"{_SELECT} WHERE {where} ORDER BY id LIMIT ?", (*params, limit))
            return [schedule_from_row(r) for r in rows]

        result: list[ScheduleRecord] = await self._run(op)
        return result

    async def pause_schedule(
        self, org: str, schedule_id: str, paused: bool, next_fire_at: float | None, now: float
    ) -> ScheduleRecord | None:
        def op(conn: sqlite3.Connection) -> ScheduleRecord | None:
            conn.execute(
                "UPDATE schedules SET paused = ?, next_fire_at = ?, updated_at = ? "
                "WHERE org = ? AND id = ?",
                (int(paused), None if paused else next_fire_at, now, org, schedule_id),
            )
            row = conn.execute(f"{_SELECT} WHERE org = ? AND id = ?", (org, schedule_id))
            found = row.fetchone()
            return None if found is None else schedule_from_row(found)

        result: ScheduleRecord | None = await self._run(op)
        return result

    async def delete_schedule(self, org: str, schedule_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM schedules WHERE org = ? AND id = ?", (org, schedule_id))
            return cur.rowcount > 0

        result: bool = await self._run(op)
        return result

    async def delete_code_schedules(self, org: str, loop: str, keep: list[str]) -> int:
        # "NOT IN ()" is not SQL, and "NOT IN (NULL)" keeps every row
        kept = f"AND id NOT IN ({', '.join('?' for _ in keep)})" if keep else ""

        def op(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                f"DELETE FROM schedules WHERE org = ? AND loop = ? AND source = 'code' {kept}",
                (org, loop, *keep),
            )
            return cur.rowcount

        result: int = await self._run(op)
        return result

    async def fire_schedules(
        self, org: str, now: float, plan: Callable[[ScheduleRecord], Firing], limit: int
    ) -> tuple[int, float | None]:
        def op(conn: sqlite3.Connection) -> tuple[int, float | None]:
            return fire_schedules_in(conn, org, now, plan, limit)

        result: tuple[int, float | None] = await self._run(op)
        return result


def fire_schedules_in(
    conn: sqlite3.Connection,
    org: str,
    now: float,
    plan: Callable[[ScheduleRecord], Firing],
    limit: int,
) -> tuple[int, float | None]:
    """``fire_schedules`` within the caller's transaction."""
    due = conn.execute(
        f"{_SELECT} WHERE org = ? AND next_fire_at <= ? ORDER BY next_fire_at LIMIT ?",
        (org, now, limit),
    ).fetchall()
    started = 0
    for row in due:
        schedule = schedule_from_row(row)
        firing = plan(schedule)
        fired = firing.tick_at is not None and firing.run_id is not None
        if firing.run_id is not None and fired:
            started += insert_tick_run(
                conn, org, firing.run_id, schedule.loop, _input(schedule, firing), now,
                firing.deadline_at, firing.trace_parent,
            )  # fmt: skip
        conn.execute(
            "UPDATE schedules SET next_fire_at = ?, updated_at = ?, "
            "last_fire_at = CASE WHEN ? THEN ? ELSE last_fire_at END, "
            "last_run_id = CASE WHEN ? THEN ? ELSE last_run_id END "
            "WHERE org = ? AND id = ?",
            (firing.next_fire_at, now, fired, firing.tick_at, fired, firing.run_id,
             org, schedule.id),
        )  # fmt: skip
    upcoming = conn.execute(
        "SELECT min(next_fire_at) FROM schedules WHERE org = ? AND next_fire_at IS NOT NULL",
        (org,),
    ).fetchone()
    return started, None if upcoming is None else upcoming[0]
