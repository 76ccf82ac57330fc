"""Scan rows in SQLite: provisioning, the link's state machine, outcomes and expiry.

A scan reaching a terminal status (completed, failed, expired) inserts the run's signal
``scan:<id>`` (naming the scan, carrying none of its data), and re-queues the run if it is
waiting, in the same transaction. So a wait reached after the scan finished still finds it
(the signal is buffered), and a wait reached before is woken at once.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pulseloop.store import sql
from pulseloop.store.base import (
    SCAN_OPEN_STATUSES,
    SCAN_SIGNAL_PAYLOAD,
    AnalysisJob,
    ScanRecord,
    scan_signal_key,
)
from pulseloop.store.sql import SCAN_COLUMNS, lite
from pulseloop.store.sqlite import outbox


def scan_from_row(row: tuple[Any, ...]) -> ScanRecord:
    """A ``SELECT SCAN_COLUMNS`` row as a record."""
    return ScanRecord(*row)


def _one(conn: sqlite3.Connection, query: str, params: tuple[Any, ...]) -> ScanRecord | None:
    row = conn.execute(lite(query), params).fetchone()
    return None if row is None else scan_from_row(row)


def create(
    conn: sqlite3.Connection,
    org: str,
    run_id: str,
    step: str,
    scan_id: str,
    token_hash: str,
    metadata_json: str,
    now: float,
    expires_at: float,
) -> ScanRecord:
    """Insert, idempotently per (run, step)."""
    conn.execute(
        "INSERT OR IGNORE INTO scans (org, id, run_id, step, token_hash, status, metadata, "
        "created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
        (org, scan_id, run_id, step, token_hash, metadata_json, now, now, expires_at),
    )
    found = _one(conn, sql.SCAN_OF_STEP, (run_id, step, org))
    assert found is not None
    return found


def latest(conn: sqlite3.Connection, org: str, run_id: str) -> ScanRecord | None:
    """The run's newest scan."""
    return _one(conn, sql.LATEST_SCAN, (run_id, org))


def by_id(conn: sqlite3.Connection, org: str, scan_id: str) -> ScanRecord | None:
    """A scan of ``org``."""
    return _one(conn, sql.SCAN_BY_ID, (scan_id, org))


def by_token(conn: sqlite3.Connection, token_hash: str) -> ScanRecord | None:
    """The scan a link opens."""
    return _one(conn, sql.SCAN_BY_TOKEN, (token_hash,))


def move(
    conn: sqlite3.Connection,
    token_hash: str,
    from_statuses: tuple[str, ...],
    to_status: str,
    now: float,
) -> ScanRecord | None:
    """Change status if it is one of ``from_statuses`` and the scan has not expired."""
    marks = ", ".join("?" for _ in from_statuses)
    row = conn.execute(
        f"UPDATE scans SET status = ?, updated_at = ? WHERE token_hash = ? "
        f"AND status IN ({marks}) AND expires_at > ? RETURNING {SCAN_COLUMNS}",
        (to_status, now, token_hash, *from_statuses, now),
    ).fetchone()
    return None if row is None else scan_from_row(row)


def finish(
    conn: sqlite3.Connection,
    scan_id: str,
    status: str,
    result_json: str | None,
    failure_reason: str | None,
    now: float,
) -> ScanRecord:
    """Record the outcome and signal the run, unless an outcome was recorded already."""
    conn.execute("DELETE FROM analysis_jobs WHERE scan_id = ?", (scan_id,))
    row = conn.execute(
        "UPDATE scans SET status = ?, result = ?, failure_reason = ?, updated_at = ?, "
        f"completed_at = ? WHERE id = ? AND completed_at IS NULL RETURNING {SCAN_COLUMNS}",
        (status, result_json, failure_reason, now, now, scan_id),
    ).fetchone()
    if row is None:
        stored = _one(conn, sql.SCAN_BY_KEY, (scan_id,))
        if stored is None:
            raise LookupError(f"no scan {scan_id!r}")
        return stored  # finished before: the first outcome stands, the run was told once
    scan = scan_from_row(row)
    _signal(conn, scan, now)
    outbox.scan_ended(conn, scan.id, scan.status)
    return scan


def finish_open(
    conn: sqlite3.Connection,
    token_hash: str,
    from_statuses: tuple[str, ...],
    status: str,
    result_json: str | None,
    failure_reason: str | None,
    now: float,
) -> ScanRecord | None:
    """Finish an open, unexpired scan and signal its run; None if it was not open."""
    marks = ", ".join("?" for _ in from_statuses)
    row = conn.execute(
        "UPDATE scans SET status = ?, result = ?, failure_reason = ?, updated_at = ?, "
        f"completed_at = ? WHERE token_hash = ? AND status IN ({marks}) AND expires_at > ? "
        f"AND completed_at IS NULL RETURNING {SCAN_COLUMNS}",
        (status, result_json, failure_reason, now, now, token_hash, *from_statuses, now),
    ).fetchone()
    if row is None:
        return None
    scan = scan_from_row(row)
    _signal(conn, scan, now)
    outbox.scan_ended(conn, scan.id, scan.status)
    return scan


def accept_upload(
    conn: sqlite3.Connection,
    token_hash: str,
    from_statuses: tuple[str, ...],
    kind: str,
    payload: str,
    now: float,
) -> ScanRecord | None:
    """Move the scan to processing and store its analysis job, together."""
    scan = move(conn, token_hash, from_statuses, "processing", now)
    if scan is not None:
        conn.execute(
            "INSERT INTO analysis_jobs (scan_id, org, kind, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (scan.id, scan.org, kind, payload, now),
        )
    return scan


def claim_analyses(
    conn: sqlite3.Connection, worker: str, limit: int, lease_now: float, lease_s: float
) -> list[AnalysisJob]:
    """Lease up to ``limit`` unheld jobs, oldest first."""
    rows = conn.execute(
        "UPDATE analysis_jobs SET lease_owner = ?, lease_expires_at = ?, "
        "attempts = attempts + 1 WHERE scan_id IN (SELECT scan_id FROM analysis_jobs "
        "WHERE lease_expires_at IS NULL OR lease_expires_at < ? ORDER BY created_at LIMIT ?) "
        "RETURNING scan_id, org, kind, payload, attempts, created_at",
        (worker, lease_now + lease_s, lease_now, limit),
    ).fetchall()
    return sorted((AnalysisJob(*row) for row in rows), key=lambda job: job.created_at)


def expire_due(conn: sqlite3.Connection, org: str, now: float) -> tuple[int, float | None]:
    """Expire open scans past ``expires_at``; return (count, next expiry)."""
    marks = ", ".join("?" for _ in SCAN_OPEN_STATUSES)
    rows = conn.execute(
        "UPDATE scans SET status = 'expired', failure_reason = 'expired', updated_at = ?, "
        f"completed_at = ? WHERE org = ? AND completed_at IS NULL AND status IN ({marks}) "
        "AND expires_at <= ? "
        f"RETURNING {SCAN_COLUMNS}",
        (now, now, org, *SCAN_OPEN_STATUSES, now),
    ).fetchall()
    for row in rows:
        _signal(conn, scan_from_row(row), now)
        outbox.scan_ended(conn, row[1], "expired")
    (next_at,) = conn.execute(
        "SELECT min(expires_at) FROM scans WHERE org = ? AND completed_at IS NULL "
        f"AND status IN ({marks})",
        (org, *SCAN_OPEN_STATUSES),
    ).fetchone()
    return len(rows), next_at


def _signal(conn: sqlite3.Connection, scan: ScanRecord, now: float) -> None:
    # scans name their run by (org, id); its signals belong to its key
    conn.execute(
        "INSERT INTO signals (run_id, key, payload, created_at) "
        "SELECT run_key, ?, ?, ? FROM runs WHERE org = ? AND id = ?",
        (scan_signal_key(scan.id), SCAN_SIGNAL_PAYLOAD, now, scan.org, scan.run_id),
    )
    conn.execute(
        "UPDATE runs SET status = 'queued', wake_at = NULL, updated_at = ? "
        "WHERE org = ? AND id = ? AND status = 'waiting'",
        (now, scan.org, scan.run_id),
    )
