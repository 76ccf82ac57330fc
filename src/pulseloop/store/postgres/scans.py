"""Scan rows on PostgreSQL: provisioning, the link's state machine, outcomes, expiry.

A terminal status inserts the run's signal ``scan:<id>`` and re-queues the run if it is
waiting, in the same transaction, after locking the run row first (see ``runs.py``: a run
parking at the same instant then sees the signal). Outcomes are idempotent: a second
``finish`` after a lost commit acknowledgement adds no second signal.
"""

from __future__ import annotations

from typing import Any

import psycopg

from pulseloop.store import sql
from pulseloop.store.base import (
    SCAN_OPEN_STATUSES,
    SCAN_SIGNAL_PAYLOAD,
    ScanRecord,
    scan_signal_key,
)
from pulseloop.store.postgres import outbox
from pulseloop.store.sql import SCAN_COLUMNS

Conn = psycopg.AsyncConnection[Any]
_OPEN = list(SCAN_OPEN_STATUSES)


async def _one(conn: Conn, query: str, params: tuple[Any, ...]) -> ScanRecord | None:
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return None if row is None else ScanRecord(*row)


async def create(
    conn: Conn,
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
    await conn.execute(
        "INSERT INTO scans (org, id, run_id, step, token_hash, status, metadata, created_at, "
        "updated_at, expires_at) VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s, %s, %s) "
        "ON CONFLICT DO NOTHING",
        (org, scan_id, run_id, step, token_hash, metadata_json, now, now, expires_at),
    )
    found = await _one(conn, sql.SCAN_OF_STEP, (run_id, step, org))
    assert found is not None
    return found


async def latest(conn: Conn, org: str, run_id: str) -> ScanRecord | None:
    """The run's newest scan."""
    return await _one(conn, sql.LATEST_SCAN, (run_id, org))


async def by_id(conn: Conn, org: str, scan_id: str) -> ScanRecord | None:
    """A scan of ``org``."""
    return await _one(conn, sql.SCAN_BY_ID, (scan_id, org))


async def by_token(conn: Conn, token_hash: str) -> ScanRecord | None:
    """The scan a link opens."""
    return await _one(conn, sql.SCAN_BY_TOKEN, (token_hash,))


async def move(
    conn: Conn, token_hash: str, from_statuses: tuple[str, ...], to_status: str, now: float
) -> ScanRecord | None:
    """Change status if it is one of ``from_statuses`` and the scan has not expired."""
    cur = await conn.execute(
        "UPDATE scans SET status = %s, updated_at = %s WHERE token_hash = %s "
        "AND status = ANY(%s::text[]) AND expires_at > %s AND completed_at IS NULL "
        f"RETURNING {SCAN_COLUMNS}",
        (to_status, now, token_hash, list(from_statuses), now),
    )
    row = await cur.fetchone()
    return None if row is None else ScanRecord(*row)


async def finish(
    conn: Conn,
    scan_id: str,
    status: str,
    result_json: str | None,
    failure_reason: str | None,
    now: float,
) -> ScanRecord:
    """Record the outcome and signal the run (run row locked first)."""
    await conn.execute(
        "SELECT 1 FROM runs WHERE (org, id) = (SELECT org, run_id FROM scans WHERE id = %s) "
        "FOR NO KEY UPDATE",
        (scan_id,),
    )
    await conn.execute("DELETE FROM analysis_jobs WHERE scan_id = %s", (scan_id,))
    cur = await conn.execute(
        "UPDATE scans SET status = %s, result = %s, failure_reason = %s, updated_at = %s, "
        f"completed_at = %s WHERE id = %s AND completed_at IS NULL RETURNING {SCAN_COLUMNS}",
        (status, result_json, failure_reason, now, now, scan_id),
    )
    row = await cur.fetchone()
    if row is None:  # finished before: the first outcome stands, the run was told once
        stored = await _one(conn, sql.SCAN_BY_KEY, (scan_id,))
        if stored is None:
            raise LookupError(f"no scan {scan_id!r}")
        return stored
    scan = ScanRecord(*row)
    await _signal(conn, [scan], now)
    await outbox.scan_ended(conn, scan.id, scan.status)
    return scan


async def finish_open(
    conn: Conn,
    token_hash: str,
    from_statuses: tuple[str, ...],
    status: str,
    result_json: str | None,
    failure_reason: str | None,
    now: float,
) -> ScanRecord | None:
    """Finish an open, unexpired scan and signal its run (run row locked first); None if
    it was not open."""
    await conn.execute(
        "SELECT 1 FROM runs WHERE (org, id) = "
        "(SELECT org, run_id FROM scans WHERE token_hash = %s) "
        "FOR NO KEY UPDATE",
        (token_hash,),
    )
    cur = await conn.execute(
        "UPDATE scans SET status = %s, result = %s, failure_reason = %s, updated_at = %s, "
        "completed_at = %s WHERE token_hash = %s AND status = ANY(%s::text[]) "
        f"AND expires_at > %s AND completed_at IS NULL RETURNING {SCAN_COLUMNS}",
        (status, result_json, failure_reason, now, now, token_hash, list(from_statuses), now),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    scan = ScanRecord(*row)
    await _signal(conn, [scan], now)
    await outbox.scan_ended(conn, scan.id, scan.status)
    return scan


async def expire_due(conn: Conn, org: str, now: float) -> tuple[int, float | None]:
    """Expire open scans past ``expires_at`` (each exactly once, however many workers
    race); return (count, next expiry)."""
    due = "org = %s AND completed_at IS NULL AND status = ANY(%s::text[]) AND expires_at <= %s"
    cur = await conn.execute(f"SELECT DISTINCT run_id FROM scans WHERE {due}", (org, _OPEN, now))
    run_ids = [r[0] for r in await cur.fetchall()]
    expired: list[ScanRecord] = []
    if run_ids:
        await conn.execute(
            "SELECT 1 FROM runs WHERE org = %s AND id = ANY(%s::text[]) ORDER BY id "
            "FOR NO KEY UPDATE",
            (org, run_ids),
        )
        cur = await conn.execute(
            "UPDATE scans SET status = 'expired', failure_reason = 'expired', updated_at = %s, "
            f"completed_at = %s WHERE {due} AND run_id = ANY(%s::text[]) "
            f"RETURNING {SCAN_COLUMNS}",
            (now, now, org, _OPEN, now, run_ids),
        )
        expired = [ScanRecord(*r) for r in await cur.fetchall()]
        await _signal(conn, expired, now)
        for scan in expired:
            await outbox.scan_ended(conn, scan.id, "expired")
    cur = await conn.execute(
        "SELECT min(expires_at) FROM scans WHERE org = %s AND completed_at IS NULL "
        "AND status = ANY(%s::text[])",
        (org, _OPEN),
    )
    row = await cur.fetchone()
    return len(expired), None if row is None else row[0]


async def _signal(conn: Conn, scans: list[ScanRecord], now: float) -> None:
    if not scans:
        return
    # scans name their run by (org, id); its signals belong to its key
    orgs = [s.org for s in scans]
    run_ids = [s.run_id for s in scans]
    keys = [scan_signal_key(s.id) for s in scans]
    payloads = [SCAN_SIGNAL_PAYLOAD for _ in scans]
    await conn.execute(
        "INSERT INTO signals (run_id, key, payload, created_at) "
        "SELECT r.run_key, n.key, n.payload, %s FROM unnest(%s::text[], %s::text[], "
        "%s::text[], %s::text[]) AS n(org, run_id, key, payload) "
        "JOIN runs r ON r.org = n.org AND r.id = n.run_id WHERE NOT EXISTS "
        "(SELECT 1 FROM signals s WHERE s.run_id = r.run_key AND s.key = n.key)",
        (now, orgs, run_ids, keys, payloads),
    )
    await conn.execute(
        "UPDATE runs SET status = 'queued', wake_at = NULL, updated_at = %s "
        "FROM unnest(%s::text[], %s::text[]) AS n(org, id) "
        "WHERE runs.org = n.org AND runs.id = n.id AND runs.status = 'waiting'",
        (now, orgs, run_ids),
    )
