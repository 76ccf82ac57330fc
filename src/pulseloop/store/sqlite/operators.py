"""Operator actions on a run (cancel, pause, resume, retry, restart) as SQL.

Each runs inside one transaction on the database thread. A run a worker is executing is
changed only through its row: clearing ``lease_owner`` makes the worker's next fenced
write fail (it unwinds and writes nothing more); setting ``paused`` while keeping the
lease lets it record the step in hand and then stop.
"""

from __future__ import annotations

import sqlite3

from pulseloop.store import sql
from pulseloop.store.base import RunRecord
from pulseloop.store.refusals import (
    PAUSABLE,
    UNFINISHED,
    check_not_purged,
    check_status,
    no_such_step,
    run_not_found,
)
from pulseloop.store.sql import lite
from pulseloop.store.sqlite import outbox
from pulseloop.store.sqlite.children import run_ended
from pulseloop.store.sqlite.rows import RUN_COLUMNS, run_from_row


def _load(conn: sqlite3.Connection, org: str, run_id: str) -> RunRecord:
    row = conn.execute(
        f"SELECT {RUN_COLUMNS} FROM runs WHERE org = ? AND id = ?", (org, run_id)
    ).fetchone()
    if row is None:
        raise run_not_found(run_id)
    return run_from_row(row)


def _keep_as_attempts(
    conn: sqlite3.Connection, run_key: str, where: str, params: tuple[object, ...]
) -> None:
    """Move step records about to be forgotten into attempt history, so operators
    still see what ran (and how it failed) before a retry or restart."""
    conn.execute(
        "INSERT OR IGNORE INTO attempts (run_id, step, generation, attempt, status, "
        "started_at, finished_at, error, retry_at, version, worker) "
        "SELECT s.run_id, s.name, r.generation, s.attempts, s.status, s.started_at, "
        "s.finished_at, s.error, NULL, s.version, NULL FROM steps s "
        "JOIN runs r ON r.run_key = s.run_id "
        f"WHERE s.run_id = ? AND s.kind = 'do' AND {where}",
        (run_key, *params),
    )


def cancel(conn: sqlite3.Connection, org: str, run_id: str, now: float) -> RunRecord:
    """Unfinished -> cancelled; the worker holding it loses its lease."""
    run = _load(conn, org, run_id)
    check_status(run, "cancel", UNFINISHED)
    conn.execute(lite(sql.CANCEL_RUN), (now, now, run.key))
    conn.execute(lite(sql.DELETE_WAITS), (run.key,))
    outbox.run_ended(conn, run.key, "cancelled")
    run_ended(conn, run.key, now)
    return _load(conn, org, run_id)


def pause(conn: sqlite3.Connection, org: str, run_id: str, now: float) -> RunRecord:
    """Queued/waiting/running -> paused. A running one stops after its current step."""
    run = _load(conn, org, run_id)
    if run.status == "paused":
        return run
    check_status(run, "pause", PAUSABLE)
    conn.execute(lite(sql.PAUSE_RUN), (now, run.key))
    return _load(conn, org, run_id)


def resume(
    conn: sqlite3.Connection, org: str, run_id: str, now: float, lease_now: float
) -> RunRecord:
    """Paused -> queued (or back to running if its worker still holds it)."""
    run = _load(conn, org, run_id)
    if run.status in ("queued", "running", "waiting"):
        return run
    check_status(run, "resume", ("paused",))
    conn.execute(
        "UPDATE runs SET updated_at = ?, status = CASE WHEN lease_owner IS NOT NULL "
        "AND lease_expires_at > ? THEN 'running' ELSE 'queued' END, wake_at = NULL, "
        "lease_owner = CASE WHEN lease_expires_at > ? THEN lease_owner END WHERE run_key = ?",
        (now, lease_now, lease_now, run.key),
    )
    return _load(conn, org, run_id)


def retry(conn: sqlite3.Connection, org: str, run_id: str, now: float) -> RunRecord:
    """Failed -> queued: finished steps replay, failed ones run again with fresh retries."""
    run = _load(conn, org, run_id)
    check_status(run, "retry", ("failed",))
    _keep_as_attempts(conn, run.key, "s.status = 'failed'", ())
    conn.execute(lite(sql.DELETE_FAILED_STEPS), (run.key,))
    _requeue(conn, run.key, now)
    return _load(conn, org, run_id)


def restart(
    conn: sqlite3.Connection, org: str, run_id: str, from_step: str, now: float
) -> RunRecord:
    """Forget ``from_step`` and everything recorded after it; run again from there."""
    run = _load(conn, org, run_id)
    check_not_purged(run, "restart")
    row = conn.execute(
        "SELECT seq FROM steps WHERE run_id = ? AND name = ? "
        "UNION ALL SELECT seq FROM waits WHERE run_id = ? AND name = ?",
        (run.key, from_step, run.key, from_step),
    ).fetchone()
    if row is None:
        known = [r[0] for r in conn.execute(
            lite(sql.STEP_NAMES), (run.key,)
        )]  # fmt: skip
        raise no_such_step(run, from_step, known)
    (seq,) = row
    forgotten = [r[0] for r in conn.execute(lite(sql.NAMES_FROM), (run.key, seq, run.key, seq))]
    _keep_as_attempts(conn, run.key, "s.seq >= ?", (seq,))
    conn.execute(lite(sql.DELETE_STEPS_FROM), (run.key, seq))
    conn.execute(lite(sql.DELETE_WAITS_FROM), (run.key, seq))
    conn.executemany(
        "UPDATE signals SET consumed_by = NULL WHERE run_id = ? AND consumed_by = ?",
        [(run.key, name) for name in forgotten],
    )
    _requeue(conn, run.key, now)
    return _load(conn, org, run_id)


def _requeue(conn: sqlite3.Connection, run_key: str, now: float) -> None:
    conn.execute(lite(sql.REQUEUE_RUN), (now, run_key))
