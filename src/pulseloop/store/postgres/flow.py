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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

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
    slot_filter = (
        "key = (SELECT flow_key FROM runs WHERE org = %(org)s AND id = %(only)s)"
        if only
        else "TRUE"
    )
    return (
        "slots AS (SELECT key, lim - held AS free FROM concurrency_slots "
        f"WHERE org = %(org)s AND loop = ANY(%(loops)s::text[]) AND {slot_filter} "
        "AND queued > 0 AND held < lim "
        "ORDER BY served_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
        "keyed AS (SELECT k.run_key, k.priority, k.created_at FROM slots CROSS JOIN LATERAL "
        f"(SELECT run_key, priority, created_at FROM runs WHERE {match} "
        "AND flow_key = slots.key AND status = 'queued' "
        "ORDER BY priority DESC, created_at LIMIT slots.free FOR UPDATE SKIP LOCKED) AS k)"
    )


class PostgresRates:
    """The rate-limit half of :class:`~pulseloop.store.postgres.store.PostgresStore`.

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
