"""Operator actions on a run (cancel, pause, resume, retry, restart) on PostgreSQL.

Each runs in one transaction that starts by locking the run row, so it waits for a
worker's in-flight fenced write to commit (and that write's fence sees the change next
time): clearing ``lease_owner`` makes the worker's next fenced write fail; setting
``paused`` while keeping the lease lets it record the step in hand and then stop.
"""

from __future__ import annotations

from typing import Any

import psycopg

from pulseloop.store import sql
from pulseloop.store.base import RunRecord
from pulseloop.store.postgres import outbox
from pulseloop.store.postgres.children import run_ended
from pulseloop.store.refusals import (
    PAUSABLE,
    UNFINISHED,
    check_not_purged,
    check_status,
    no_such_step,
    run_not_found,
)
from pulseloop.store.sqlite.rows import RUN_COLUMNS, run_from_row

Conn = psycopg.AsyncConnection[Any]


async def load(conn: Conn, org: str, run_id: str, *, lock: bool = False) -> RunRecord:
    """The run (locked for this transaction if ``lock``), or RunNotFound."""
    suffix = " FOR NO KEY UPDATE" if lock else ""
    cur = await conn.execute(
        f"SELECT {RUN_COLUMNS} FROM runs WHERE org = %s AND id = %s{suffix}", (org, run_id)
    )
    row = await cur.fetchone()
    if row is None:
        raise run_not_found(run_id)
    return run_from_row(row)


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
    check_status(run, "cancel", UNFINISHED)
    await conn.execute(sql.CANCEL_RUN, (now, now, run.key))
    await conn.execute(sql.DELETE_WAITS, (run.key,))
    await outbox.run_ended(conn, run.key, "cancelled")
    await run_ended(conn, run.key, now)
    return await load(conn, org, run_id)


async def pause(conn: Conn, org: str, run_id: str, now: float) -> RunRecord:
    """Queued/waiting/running -> paused. A running one stops after its current step."""
    run = await load(conn, org, run_id, lock=True)
    if run.status == "paused":
        return run
    check_status(run, "pause", PAUSABLE)
    await conn.execute(sql.PAUSE_RUN, (now, run.key))
    return await load(conn, org, run_id)


async def resume(conn: Conn, org: str, run_id: str, now: float, lease_now: float) -> RunRecord:
    """Paused -> queued (or back to running if its worker still holds it)."""
    run = await load(conn, org, run_id, lock=True)
    if run.status in ("queued", "running", "waiting"):
        return run
    check_status(run, "resume", ("paused",))
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
    check_status(run, "retry", ("failed",))
    await _keep_as_attempts(conn, run.key, "s.status = 'failed'", ())
    await conn.execute(sql.DELETE_FAILED_STEPS, (run.key,))
    await _requeue(conn, run.key, now)
    return await load(conn, org, run_id)


async def restart(conn: Conn, org: str, run_id: str, from_step: str, now: float) -> RunRecord:
    """Forget ``from_step`` and everything recorded after it; run again from there."""
    run = await load(conn, org, run_id, lock=True)
    check_not_purged(run, "restart")
    cur = await conn.execute(
        "SELECT seq FROM steps WHERE run_id = %s AND name = %s "
        "UNION ALL SELECT seq FROM waits WHERE run_id = %s AND name = %s LIMIT 1",
        (run.key, from_step, run.key, from_step),
    )
    row = await cur.fetchone()
    if row is None:
        cur = await conn.execute(sql.STEP_NAMES, (run.key,))
        known = [r[0] for r in await cur.fetchall()]
        raise no_such_step(run, from_step, known)
    (seq,) = row
    cur = await conn.execute(sql.NAMES_FROM, (run.key, seq, run.key, seq))
    forgotten = [r[0] for r in await cur.fetchall()]
    await _keep_as_attempts(conn, run.key, "s.seq >= %s", (seq,))
    await conn.execute(sql.DELETE_STEPS_FROM, (run.key, seq))
    await conn.execute(sql.DELETE_WAITS_FROM, (run.key, seq))
    await conn.execute(
        "UPDATE signals SET consumed_by = NULL WHERE run_id = %s AND consumed_by = ANY(%s)",
        (run.key, forgotten),
    )
    await _requeue(conn, run.key, now)
    return await load(conn, org, run_id)


async def _requeue(conn: Conn, run_key: str, now: float) -> None:
    await conn.execute(sql.REQUEUE_RUN, (now, run_key))
