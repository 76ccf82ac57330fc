"""Schedule rows on PostgreSQL (see :class:`~pulseloop.store.base.ScheduleStore`).

Many workers on many machines look for due schedules at once. Each claims due rows with
``FOR UPDATE SKIP LOCKED``: a row another worker is firing is skipped, not waited for,
and the claim, the tick's run insert and the advance of ``next_fire_at`` commit together,
so the next worker to see the row sees it advanced. Should a tick still be fired twice
(a retried transaction after a lost COMMIT acknowledgement), its run id is fixed by the
schedule and the tick time and the insert is ``ON CONFLICT DO NOTHING``: one run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from pulseloop.store.base import Firing, ScheduleRecord, fallback_run_key
from pulseloop.store.postgres.wakeups import Notifier
from pulseloop.store.sqlite.schedules import SCHEDULE_COLUMNS

Conn = psycopg.AsyncConnection[Any]
T = TypeVar("T")
_SELECT = f"SELECT {SCHEDULE_COLUMNS} FROM schedules"
_INSERT_RUN = (
    "INSERT INTO runs (org, id, loop, status, input, created_at, updated_at, deadline_at, "
    "trace_parent, run_key) VALUES (%s, %s, %s, 'queued', %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT DO NOTHING"
)


async def _one(conn: Conn, org: str, schedule_id: str) -> ScheduleRecord | None:
    cur = await conn.execute(f"{_SELECT} WHERE org = %s AND id = %s", (org, schedule_id))
    row = await cur.fetchone()
    return None if row is None else ScheduleRecord(*row)


async def insert_tick_run(
    conn: Conn,
    org: str,
    run_id: str,
    loop: str,
    input_json: str,
    now: float,
    deadline_at: float | None,
    trace_parent: str | None = None,
) -> bool:
    """Insert the queued run of a tick unless ``run_id`` exists in ``org``; True if new."""
    values = (org, run_id, loop, input_json, now, now, deadline_at, trace_parent)
    if (await conn.execute(_INSERT_RUN, (*values, run_id))).rowcount > 0:
        return True
    cur = await conn.execute("SELECT 1 FROM runs WHERE org = %s AND id = %s", (org, run_id))
    if await cur.fetchone() is not None:
        return False  # this tick's run exists: the tick fired already
    # another organization's run has this id as its key: ours gets another
    key = fallback_run_key(org, run_id)
    return (await conn.execute(_INSERT_RUN, (*values, key))).rowcount > 0


async def _start_ticks(
    conn: Conn, org: str, now: float, firings: list[tuple[ScheduleRecord, Firing]]
) -> int:
    """Insert the runs of the ticks that fire, in one statement; return how many are new.

    A run id that exists in ``org`` is a tick fired already (left alone); one that
    collides only with another organization's run key goes through :func:`insert_tick_run`.
    """
    ticks = [(s, f) for s, f in firings if f.tick_at is not None and f.run_id is not None]
    if not ticks:
        return 0
    ids = [f.run_id for _, f in ticks]
    cur = await conn.execute(
        "INSERT INTO runs (org, id, loop, status, input, created_at, updated_at, deadline_at, "
        "trace_parent, run_key) SELECT %s, t.id, t.loop, 'queued', t.input, %s, %s, "
        "t.deadline, t.trace, t.id FROM unnest(%s::text[], %s::text[], %s::text[], "
        "%s::float8[], %s::text[]) AS t(id, loop, input, deadline, trace) "
        "ON CONFLICT DO NOTHING RETURNING id",
        (org, now, now, ids, [s.loop for s, _ in ticks], [_input(s, f) for s, f in ticks],
         [f.deadline_at for _, f in ticks], [f.trace_parent for _, f in ticks]),
    )  # fmt: skip
    inserted = {row[0] for row in await cur.fetchall()}
    if len(inserted) == len(ticks):
        return len(inserted)
    started = len(inserted)
    for schedule, firing in ticks:
        if firing.run_id not in inserted and firing.run_id is not None:
            started += await insert_tick_run(
                conn,
                org,
                firing.run_id,
                schedule.loop,
                _input(schedule, firing),
                now,
                firing.deadline_at,
                firing.trace_parent,
            )
    return started


def _input(schedule: ScheduleRecord, firing: Firing) -> str:
    """The input of the tick's run: the plan's, else the schedule's body as stored."""
    return schedule.body if firing.run_input is None else firing.run_input


class PostgresSchedules:
    """The schedule half of :class:`~pulseloop.store.postgres.store.PostgresStore`."""

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

    async def put_schedule(self, record: ScheduleRecord) -> ScheduleRecord:
        r = record

        async def op(conn: Conn) -> ScheduleRecord:
            await conn.execute(
                f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (org, id) DO UPDATE SET loop = excluded.loop, "
                "body = excluded.body, missed = excluded.missed, source = excluded.source, "
                "updated_at = excluded.updated_at, next_fire_at = CASE "
                "WHEN schedules.paused THEN NULL "
                "WHEN schedules.cron = excluded.cron AND schedules.tz = excluded.tz "
                "AND schedules.start_at IS NOT DISTINCT FROM excluded.start_at "
                "AND schedules.end_at IS NOT DISTINCT FROM excluded.end_at "
                "THEN schedules.next_fire_at ELSE excluded.next_fire_at END, "
                "cron = excluded.cron, tz = excluded.tz, start_at = excluded.start_at, "
                "end_at = excluded.end_at",
                (r.org, r.id, r.loop, r.cron, r.tz, r.body, r.missed, r.start_at, r.end_at,
                 r.paused, r.next_fire_at, r.last_fire_at, r.last_run_id, r.source,
                 r.created_at, r.updated_at),
            )  # fmt: skip
            found = await _one(conn, r.org, r.id)
            assert found is not None
            return found

        return await self._tx(op, notify=record.org)

    async def get_schedule(self, org: str, schedule_id: str) -> ScheduleRecord | None:
        return await self._tx(lambda c: _one(c, org, schedule_id), read_only=True)

    async def list_schedules(
        self, org: str, *, loop: str | None = None, limit: int = 200
    ) -> list[ScheduleRecord]:
        where, params = "org = %s", [org]
        if loop is not None:
            where, params = "org = %s AND loop = %s", [org, loop]

        async def op(conn: Conn) -> list[ScheduleRecord]:
            sql = f"{_SELECT} WHERE {where} ORDER BY id LIMIT %s"
            cur = await conn.execute(sql, (*params, limit))
            return [ScheduleRecord(*row) for row in await cur.fetchall()]

        return await self._tx(op, read_only=True)

    async def pause_schedule(
        self, org: str, schedule_id: str, paused: bool, next_fire_at: float | None, now: float
    ) -> ScheduleRecord | None:
        async def op(conn: Conn) -> ScheduleRecord | None:
            await conn.execute(
                "UPDATE schedules SET paused = %s, next_fire_at = %s, updated_at = %s "
                "WHERE org = %s AND id = %s",
                (paused, None if paused else next_fire_at, now, org, schedule_id),
            )
            return await _one(conn, org, schedule_id)

        return await self._tx(op, notify=org)

    async def delete_schedule(self, org: str, schedule_id: str) -> bool:
        async def op(conn: Conn) -> bool:
            cur = await conn.execute(
                "DELETE FROM schedules WHERE org = %s AND id = %s", (org, schedule_id)
            )
            return cur.rowcount > 0

        return await self._tx(op)

    async def delete_code_schedules(self, org: str, loop: str, keep: list[str]) -> int:
        async def op(conn: Conn) -> int:
            cur = await conn.execute(
                "DELETE FROM schedules WHERE org = %s AND loop = %s AND source = 'code' "
                "AND NOT (id = ANY(%s))",
                (org, loop, keep),
            )
            return max(cur.rowcount, 0)

        return await self._tx(op)

    async def fire_schedules(
        self, org: str, now: float, plan: Callable[[ScheduleRecord], Firing], limit: int
    ) -> tuple[int, float | None]:
        async def op(conn: Conn) -> tuple[int, float | None]:
            return await fire_schedules_in(conn, org, now, plan, limit)

        started, next_at = await self._tx(op)
        if started:  # only then: every worker runs this on every timer pass
            self._notifier.hint(org)
        return started, next_at


async def fire_schedules_in(
    conn: Conn, org: str, now: float, plan: Callable[[ScheduleRecord], Firing], limit: int
) -> tuple[int, float | None]:
    """``fire_schedules`` within the caller's transaction (hinting other workers is the
    caller's part, after the commit)."""
    cur = await conn.execute(
        f"{_SELECT} WHERE org = %s AND next_fire_at <= %s ORDER BY next_fire_at "
        "LIMIT %s FOR UPDATE SKIP LOCKED",
        (org, now, limit),
    )
    firings = [(s, plan(s)) for s in (ScheduleRecord(*r) for r in await cur.fetchall())]
    started = await _start_ticks(conn, org, now, firings)
    if firings:  # one statement for the batch: round trips, not rows, cost here
        fired = [f.run_id is not None and f.tick_at is not None for _, f in firings]
        await conn.execute(
            "UPDATE schedules s SET next_fire_at = t.next, updated_at = %s, "
            "last_fire_at = CASE WHEN t.fired THEN t.tick ELSE s.last_fire_at END, "
            "last_run_id = CASE WHEN t.fired THEN t.run ELSE s.last_run_id END "
            "FROM unnest(%s::text[], %s::float8[], %s::bool[], %s::float8[], "
            "%s::text[]) AS t(id, next, fired, tick, run) "
            "WHERE s.org = %s AND s.id = t.id",
            (now, [s.id for s, _ in firings], [f.next_fire_at for _, f in firings],
             fired, [f.tick_at for _, f in firings], [f.run_id for _, f in firings],
             org),
        )  # fmt: skip
    cur = await conn.execute(
        "SELECT min(next_fire_at) FROM schedules WHERE org = %s AND next_fire_at IS NOT NULL",
        (org,),
    )
    upcoming = await cur.fetchone()
    return started, None if upcoming is None else upcoming[0]
