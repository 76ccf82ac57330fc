"""Operator actions on a run (cancel, pause, resume, retry, restart) on PostgreSQL.

Each runs in one transaction that starts by locking the run row, so it waits for a
worker's in-flight fenced write to commit (and that write's fence sees the change next
time): clearing ``lease_owner`` makes the worker's next fenced write fail; setting
``paused`` while keeping the lease lets it record the step in hand and then stop.
"""

from __future__ import annotations

from typing import Any

import psycopg

from pulseloop.errors import InvalidRunState, RunNotFound
from pulseloop.store.base import RunRecord
from pulseloop.store.sqlite.rows import RUN_COLUMNS, run_from_row

Conn = psycopg.AsyncConnection[Any]
UNFINISHED = ("queued", "running", "waiting", "paused")


async def load(conn: Conn, org: str, run_id: str, *, lock: bool = False) -> RunRecord:
    """The run (locked for this transaction if ``lock``), or RunNotFound."""
    suffix = " FOR NO KEY UPDATE" if lock else ""
    cur = await conn.execute(
        f"SELECT {RUN_COLUMNS} FROM runs WHERE org = %s AND id = %s{suffix}", (org, run_id)
    )
    row = await cur.fetchone()
    if row is None:
        raise RunNotFound(f"no run {run_id!r} in this organization; check the id")
    return run_from_row(row)


def _refuse(run: RunRecord, action: str, allowed: tuple[str, ...]) -> InvalidRunState:
    return InvalidRunState(
        f"cannot {action} run {run.id!r}: it is {run.status}; {action} works on "
        f"{'/'.join(allowed)} runs"
    )


async def _keep_as_attempts(conn: Conn, run_key: str, where: str, params: tuple[Any, ...]) -> None:
    """Move step records about to be forgotten into attempt history."""
    await conn.execute(
        "INSERT INTO attempts (run_id, step, generation, attempt, status, started_at, "
        "finished_at, error, retry_at, version, worker) "
        "SELECT s.run_id, s.name, r.generation, s.attempts, s.status, s.started_at, "
        "s.finished_at, s.error, NULL, s.version, NULL FROM steps s JOIN runs r "
        f"ON r.run_key = s.run_id WHERE s.run_id = %s AND s.kind = 'do' AND {where} "
        "ON CONFLICT DO NOTHING",
        (run_key, *params),
    )


async def cancel(conn: Conn, org: str, run_id: str, now: float) -> RunRecord:
    """Unfinished -> cancelled; the worker holding it loses its lease."""
    run = await load(conn, org, run_id, lock=True)
    if run.status not in UNFINISHED:
        raise _refuse(run, "cancel", UNFINISHED)
    await conn.execute(
        "UPDATE runs SET status = 'cancelled', finished_at = %s, updated_at = %s, "
        "wake_at = NULL, lease_owner = NULL, lease_expires_at = NULL WHERE run_key = %s",
        (now, now, run.key),
    )
    await conn.execute("DELETE FROM waits WHERE run_id = %s", (run.key,))
    return await load(conn, org, run_id)


async def pause(conn: Conn, org: str, run_id: str, now: float) -> RunRecord:
    """Queued/waiting/running -> paused. A running one stops after its current step."""
    run = await load(conn, org, run_id, lock=True)
    if run.status == "paused":
        return run
    allowed = ("queued", "running", "waiting")
    if run.status not in allowed:
        raise _refuse(run, "pause", allowed)
    await conn.execute(
        "UPDATE runs SET status = 'paused', updated_at = %s WHERE run_key = %s", (now, run.key)
    )
    return await load(conn, org, run_id)


async def resume(conn: Conn, org: str, run_id: str, now: float, lease_now: float) -> RunRecord:
    """Paused -> queued (or back to running if its worker still holds it)."""
    run = await load(conn, org, run_id, lock=True)
    if run.status in ("queued", "running", "waiting"):
        return run
    if run.status != "paused":
        raise _refuse(run, "resume", ("paused",))
    await conn.execute(
        "UPDATE runs SET updated_at = %s, status = CASE WHEN lease_owner IS NOT NULL "
        "AND lease_expires_at > %s THEN 'running' ELSE 'queued' END, wake_at = NULL, "
        "lease_owner = CASE WHEN lease_expires_at > %s THEN lease_owner END, "
        "lease_expires_at = CASE WHEN lease_expires_at > %s THEN lease_expires_at END "
        "WHERE run_key = %s",
        (now, lease_now, lease_now, lease_now, run.key),
    )
    return await load(conn, org, run_id)


async def retry(conn: Conn, org: str, run_id: str, now: float) -> RunRecord:
    """Failed -> queued: finished steps replay, failed ones run again with fresh retries."""
    run = await load(conn, org, run_id, lock=True)
    if run.status != "failed":
        raise _refuse(run, "retry", ("failed",))
    await _keep_as_attempts(conn, run.key, "s.status = 'failed'", ())
    await conn.execute("DELETE FROM steps WHERE run_id = %s AND status = 'failed'", (run.key,))
    await _requeue(conn, run.key, now)
    return await load(conn, org, run_id)


async def restart(conn: Conn, org: str, run_id: str, from_step: str, now: float) -> RunRecord:
    """Forget ``from_step`` and everything recorded after it; run again from there."""
    run = await load(conn, org, run_id, lock=True)
    cur = await conn.execute(
        "SELECT seq FROM steps WHERE run_id = %s AND name = %s "
        "UNION ALL SELECT seq FROM waits WHERE run_id = %s AND name = %s LIMIT 1",
        (run.key, from_step, run.key, from_step),
    )
    row = await cur.fetchone()
    if row is None:
        cur = await conn.execute(
            "SELECT name FROM steps WHERE run_id = %s ORDER BY seq", (run.key,)
        )
        known = [r[0] for r in await cur.fetchall()]
        raise InvalidRunState(
            f"run {run.id!r} has no step named {from_step!r}; its steps are {known}"
        )
    (seq,) = row
    cur = await conn.execute(
        "SELECT name FROM steps WHERE run_id = %s AND seq >= %s "
        "UNION SELECT name FROM waits WHERE run_id = %s AND seq >= %s",
        (run.key, seq, run.key, seq),
    )
    forgotten = [r[0] for r in await cur.fetchall()]
    await _keep_as_attempts(conn, run.key, "s.seq >= %s", (seq,))
    await conn.execute("DELETE FROM steps WHERE run_id = %s AND seq >= %s", (run.key, seq))
    await conn.execute("DELETE FROM waits WHERE run_id = %s AND seq >= %s", (run.key, seq))
    await conn.execute(
        "UPDATE signals SET consumed_by = NULL WHERE run_id = %s AND consumed_by = ANY(%s)",
        (run.key, forgotten),
    )
    await _requeue(conn, run.key, now)
    return await load(conn, org, run_id)


async def _requeue(conn: Conn, run_key: str, now: float) -> None:
    await conn.execute(
        "UPDATE runs SET status = 'queued', generation = generation + 1, output = NULL, "
        "error = NULL, finished_at = NULL, wake_at = NULL, lease_owner = NULL, "
        "lease_expires_at = NULL, updated_at = %s WHERE run_key = %s",
        (now, run_key),
    )
