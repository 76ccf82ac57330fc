"""Organizations, API keys and the ``/metrics`` totals on PostgreSQL.

Keys are looked up by their SHA-256 only. The totals come from trigger-appended deltas
folded into counters (``counts.py`` says why not in-place counters, nor ``count(*)``).
"""

from __future__ import annotations

from typing import Any

import psycopg

from pulseloop.store import sql
from pulseloop.store.base import KeyRecord, OrgRecord, StoreStats
from pulseloop.store.postgres import counts
from pulseloop.store.refusals import key_not_found, org_exists, org_not_found

Conn = psycopg.AsyncConnection[Any]
_MAX_LATENCIES = 10_000


async def create_org(conn: Conn, name: str, now: float) -> OrgRecord:
    """Insert an organization (OrgExists if the name is taken)."""
    cur = await conn.execute(
        "INSERT INTO orgs (name, created_at) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING name",
        (name, now),
    )
    if await cur.fetchone() is None:
        raise org_exists(name)
    return OrgRecord(name, now)


async def ensure_org(conn: Conn, name: str, now: float) -> OrgRecord:
    """The organization, created if missing."""
    await conn.execute(
        "INSERT INTO orgs (name, created_at) VALUES (%s, %s) ON CONFLICT DO NOTHING", (name, now)
    )
    found = await get_org(conn, name)
    assert found is not None
    return found


async def get_org(conn: Conn, name: str) -> OrgRecord | None:
    """One organization, or None."""
    cur = await conn.execute(sql.GET_ORG, (name,))
    row = await cur.fetchone()
    return None if row is None else OrgRecord(*row)


async def list_orgs(conn: Conn) -> list[OrgRecord]:
    """Every organization, oldest first."""
    cur = await conn.execute(sql.LIST_ORGS)
    return [OrgRecord(*r) for r in await cur.fetchall()]


async def create_key(conn: Conn, org: str, key_id: str, key_hash: str, now: float) -> KeyRecord:
    """Store a new key's hash for ``org`` (OrgNotFound if there is no such org)."""
    if await get_org(conn, org) is None:
        raise org_not_found(org)
    await conn.execute(sql.INSERT_KEY, (key_id, org, key_hash, now))
    return KeyRecord(key_id, org, now, None)


async def key_by_hash(conn: Conn, key_hash: str) -> KeyRecord | None:
    """The key with this hash (revoked ones too), or None."""
    cur = await conn.execute(sql.KEY_BY_HASH, (key_hash,))
    row = await cur.fetchone()
    return None if row is None else KeyRecord(*row)


async def list_keys(conn: Conn, org: str) -> list[KeyRecord]:
    """The organization's keys, oldest first, revoked ones included."""
    cur = await conn.execute(sql.KEYS_OF_ORG, (org,))
    return [KeyRecord(*r) for r in await cur.fetchall()]


async def revoke_key(conn: Conn, key_id: str, now: float) -> KeyRecord:
    """Mark the key revoked (a second revoke keeps the first time)."""
    await conn.execute(sql.REVOKE_KEY, (now, key_id))
    cur = await conn.execute(sql.KEY_BY_ID, (key_id,))
    row = await cur.fetchone()
    if row is None:
        raise key_not_found(key_id)
    return KeyRecord(*row)


async def stats(conn: Conn, steps_since: float) -> StoreStats:
    """Totals over every organization, and latencies of steps finished after a time
    (folds the counters first: call it in a read-write transaction)."""
    await counts.fold(conn)
    found = await counts.totals(conn)
    runs, scans = found["run"], found["scan"]
    cur = await conn.execute(sql.STEP_LATENCIES, (steps_since, _MAX_LATENCIES))
    rows = await cur.fetchall()
    latest = max((float(r[0]) for r in rows), default=steps_since)
    return StoreStats(runs, scans, [max(0.0, float(r[1])) for r in rows], latest)
