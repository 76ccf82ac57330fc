"""Flow control on PostgreSQL: concurrency slots in the claim, durable rate permits.

Design record (concurrency limits across processes and machines). The claim must never
put more than ``limit`` runs of one key in a slot-holding state, with any number of
workers claiming at once under READ COMMITTED. Chosen: a ``concurrency_slots`` row per
(org, key) carrying ``held`` and ``queued`` counts that triggers keep (migration 0014);
the claim statement locks the rows of keys with room ``FOR UPDATE SKIP LOCKED``, reads
``lim - held`` from the locked (re-checked) row version, takes at most that many of the
key's oldest queued runs, and the same statement's UPDATE bumps ``held`` through the
trigger before the lock is released. A second claimer skips a key being filled; one that
locks it after the commit sees the new ``held``. The claim never waits on a lock, so it
cannot deadlock with parks and finishes, which lock their run row and then the slot row.

Considered and rejected:

* counting the key's running runs at claim time under an advisory xact lock per key:
  correct, but finding keys with room then means reading every key with queued work,
  including the full ones (head-of-line cost grows with the backlog, not the batch);
* SERIALIZABLE claims: serialization failures under every concurrent claim;
* maintaining ``held`` in engine code at each transition: claim, park, finish, release,
  cancel, pause/resume, retry, restart, reclaim, deadlines and timers all change a run's
  status; one forgotten path leaks a slot forever. The trigger sees all of them.

The unkeyed path is unchanged in shape: one more partial index arm (``runs_ready``),
and the keyed arms read an empty partial index when no run is keyed.

Costs (docs/benchmarks.md, "Flow control"): a keyed run rewrites its key's slot row at
insert, claim and finish (the per-row trigger dominates a keyed claim), and those rows
are never HOT-updated, since the counts sit in the partial index's predicate; the
migration vacuums the table after 500 dead rows. Until the table has been analyzed,
PostgreSQL reads it with a bitmap scan that visits every dead version; afterwards an
ordered index scan that stops at the batch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from pulseloop.store.records import RunRecord, TriggerWindow, fallback_run_key, window_open
from pulseloop.store.sqlite.rows import RUN_COLUMNS, run_from_row

Conn = psycopg.AsyncConnection[Any]
T = TypeVar("T")

ENSURE_SLOT = (
    "INSERT INTO concurrency_slots (org, key, loop, lim) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (org, key) DO UPDATE SET lim = excluded.lim "
    "WHERE concurrency_slots.lim IS DISTINCT FROM excluded.lim"
)
"""Create the key's slot row before its run is inserted (the insert trigger counts the run
in it), or set its limit to the loop's current one."""


def keyed_arms(match: str, only: bool) -> str:
    """CTEs ``slots`` and ``keyed``: the keys with room, locked, and each one's oldest
    queued runs up to its free slots (``match`` filters runs by org, loop and id)."""
    # a one-run worker (trigger --wait) looks only at its run's key
    of_run = "AND key = (SELECT flow_key FROM runs WHERE org = %(org)s AND id = %(only)s) "
    return (
        "slots AS (SELECT key, lim - held AS free FROM concurrency_slots "
        "WHERE org = %(org)s AND loop = ANY(%(loops)s::text[]) "
        f"{of_run if only else ''}AND queued > 0 AND held < lim "
        "ORDER BY served_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
        "keyed AS (SELECT k.run_key, k.priority, k.created_at FROM slots CROSS JOIN LATERAL "
        f"(SELECT run_key, priority, created_at FROM runs WHERE {match} "
        "AND flow_key = slots.key AND status = 'queued' "
        "ORDER BY priority DESC, created_at LIMIT slots.free FOR UPDATE SKIP LOCKED) AS k)"
    )


class PostgresFlow:
    """The flow-control part of :class:`~pulseloop.store.postgres.store.PostgresStore`:
    rate permits and trigger windows.

    A permit is decided with the key's ``rate_keys`` row locked, so two processes never
    both count the window before either inserts its permit."""

    async def _tx(  # provided by PostgresStore
        self,
        fn: Callable[[Conn], Awaitable[T]],
        *,
        idempotent: bool = True,
        notify: str | None = None,
        read_only: bool = False,
    ) -> T:
        raise NotImplementedError

    async def take_permit(
        self, org: str, key: str, limit: int, period_s: float, now: float
    ) -> float | None:
        """See :meth:`pulseloop.store.protocols.RateLimits.take_permit`."""

        async def op(conn: Conn) -> float | None:
            await conn.execute(
                "INSERT INTO rate_keys (org, key) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (org, key),
            )
            await conn.execute(
                "SELECT 1 FROM rate_keys WHERE org = %s AND key = %s FOR UPDATE", (org, key)
            )
            await conn.execute(
                "DELETE FROM rate_permits WHERE org = %s AND key = %s AND at <= %s",
                (org, key, now - period_s),
            )
            cur = await conn.execute(
                "SELECT count(*), min(at) FROM rate_permits WHERE org = %s AND key = %s",
                (org, key),
            )
            row = await cur.fetchone()
            assert row is not None
            if row[0] >= limit:
                return float(row[1]) + period_s
            await conn.execute(
                "INSERT INTO rate_permits (org, key, at) VALUES (%s, %s, %s)", (org, key, now)
            )
            return None

        # not idempotent: a rerun after a lost COMMIT answer would take a second permit
        return await self._tx(op, idempotent=False)

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

        async def op(conn: Conn) -> tuple[RunRecord, bool]:
            ident = (org, loop, window.kind, window.key)
            # racing triggers of one key take turns (the window row may not exist yet)
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 14))",
                ("\x1f".join(ident),),
            )
            return await _windowed(
                conn, org, run_id, loop, input_for, now, window, deadline_at, trace_parent,
                priority, flow_key, flow_limit,
            )  # fmt: skip

        # not idempotent: a rerun after a lost COMMIT answer could restart a debounce
        return await self._tx(op, idempotent=False, notify=org)


async def _windowed(
    conn: Conn,
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
    where = "org = %s AND loop = %s AND kind = %s AND key = %s"
    ident = (org, loop, window.kind, window.key)
    select = f"SELECT {RUN_COLUMNS} FROM runs WHERE org = %s AND id = %s"
    until = now + window.seconds

    async def one(sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return await (await conn.execute(sql, params)).fetchone()

    found = await one(f"SELECT run_id, until FROM trigger_windows WHERE {where}", ident)
    if found is not None:
        prior = await one(select, (org, found[0]))
        run = None if prior is None else run_from_row(prior)
        if run is not None and window.kind == "dedupe" and found[1] > now:
            return run, False
        if run is not None and window.kind == "debounce" and window_open(run):
            await conn.execute(
                "UPDATE runs SET input = %s, wake_at = %s, updated_at = %s WHERE run_key = %s",
                (input_for(run.id), until, now, run.key),
            )
            await conn.execute(
                f"UPDATE trigger_windows SET until = %s WHERE {where}", (until, *ident)
            )
            row = await one(select, (org, run.id))
            assert row is not None
            return run_from_row(row), False
    existing = await one(select, (org, run_id))
    if existing is not None:  # an idempotent trigger: the run this id already names
        return run_from_row(existing), False
    taken = await one("SELECT 1 FROM runs WHERE run_key = %s", (run_id,))
    key = run_id if taken is None else fallback_run_key(org, run_id)
    if flow_key is not None:
        await conn.execute(ENSURE_SLOT, (org, flow_key, loop, flow_limit))
    debounced = window.kind == "debounce"
    await conn.execute(
        "INSERT INTO runs (org, id, loop, status, input, created_at, updated_at, run_key, "
        "deadline_at, trace_parent, priority, flow_key, wake_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (org, run_id, loop, "waiting" if debounced else "queued", input_for(run_id), now, now,
         key, deadline_at, trace_parent, priority, flow_key, until if debounced else None),
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO trigger_windows (org, loop, kind, key, run_id, until) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (org, loop, kind, key) "
        "DO UPDATE SET run_id = excluded.run_id, until = excluded.until",
        (*ident, run_id, until),
    )
    row = await one(select, (org, run_id))
    assert row is not None
    return run_from_row(row), True
