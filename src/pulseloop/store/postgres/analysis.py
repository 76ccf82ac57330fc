"""Analysis jobs on PostgreSQL: accepted together with the upload, claimed with a lease.

See ``connectors/analysis.py`` for the design. Claims skip rows another process has
locked (``FOR UPDATE SKIP LOCKED``), so many analysers drain one backlog without waiting
on each other, and take jobs whose lease ran out (their analyser vanished).
"""

from __future__ import annotations

from typing import Any

import psycopg

from pulseloop.store.base import AnalysisJob, ScanRecord
from pulseloop.store.postgres import scans

Conn = psycopg.AsyncConnection[Any]


async def accept_upload(
    conn: Conn,
    token_hash: str,
    from_statuses: tuple[str, ...],
    kind: str,
    payload: str,
    now: float,
) -> ScanRecord | None:
    """Move the scan to processing and store its job, in the caller's transaction."""
    scan = await scans.move(conn, token_hash, from_statuses, "processing", now)
    if scan is not None:
        await conn.execute(
            "INSERT INTO analysis_jobs (scan_id, org, kind, payload, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            (scan.id, scan.org, kind, payload, now),
        )
    return scan


async def claim(
    conn: Conn, worker: str, limit: int, lease_now: float, lease_s: float
) -> list[AnalysisJob]:
    """Lease up to ``limit`` unheld jobs, oldest first."""
    cur = await conn.execute(
        "UPDATE analysis_jobs SET lease_owner = %s, lease_expires_at = %s, "
        "attempts = attempts + 1 WHERE scan_id IN (SELECT scan_id FROM analysis_jobs "
        "WHERE lease_expires_at IS NULL OR lease_expires_at < %s ORDER BY created_at "
        "LIMIT %s FOR UPDATE SKIP LOCKED) "
        "RETURNING scan_id, org, kind, payload, attempts, created_at",
        (worker, lease_now + lease_s, lease_now, limit),
    )
    jobs = [AnalysisJob(*row) for row in await cur.fetchall()]
    return sorted(jobs, key=lambda job: job.created_at)
