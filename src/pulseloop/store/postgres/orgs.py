"""Organizations, API keys and the ``/metrics`` totals on PostgreSQL.

Keys are looked up by their SHA-256 only. The totals are plain ``count(*) GROUP BY``
reads: counters kept by triggers (as the SQLite backend does) would make every status
change of every worker update the same few rows, serializing all writers on them.
"""

from __future__ import annotations

from typing import Any

import psycopg

from pulseloop.errors import KeyNotFound, OrgExists, OrgNotFound
from pulseloop.store.base import KeyRecord, OrgRecord, StoreStats

Conn = psycopg.AsyncConnection[Any]
_KEY_COLUMNS = "id, org, created_at, revoked_at"
_MAX_LATENCIES = 10_000


async def create_org(conn: Conn, name: str, now: float) -> OrgRecord:
    """Insert an organization (OrgExists if the name is taken)."""
    cur = await conn.execute(
        "INSERT INTO orgs (name, created_at) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING name",
        (name, now),
    )
    if await cur.fetchone() is None:
        raise OrgExists(f"an organization named {name!r} exists already; pick another name")
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
    cur = await conn.execute("SELECT name, created_at FROM orgs WHERE name = %s", (name,))
    row = await cur.fetchone()
    return None if row is None else OrgRecord(*row)


async def list_orgs(conn: Conn) -> list[OrgRecord]:
    """Every organization, oldest first."""
    cur = await conn.execute("SELECT name, created_at FROM orgs ORDER BY created_at, name")
    return [OrgRecord(*r) for r in await cur.fetchall()]


async def create_key(conn: Conn, org: str, key_id: str, key_hash: str, now: float) -> KeyRecord:
    """Store a new key's hash for ``org`` (OrgNotFound if there is no such org)."""
    if await get_org(conn, org) is None:
        raise OrgNotFound(
            f"no organization named {org!r}; create it with `pulseloop orgs create {org}`"
        )
    await conn.execute(
        "INSERT INTO keys (id, org, key_hash, created_at) VALUES (%s, %s, %s, %s)",
        (key_id, org, key_hash, now),
    )
    return KeyRecord(key_id, org, now, None)


async def key_by_hash(conn: Conn, key_hash: str) -> KeyRecord | None:
    """The key with this hash (revoked ones too), or None."""
    cur = await conn.execute(f"SELECT {_KEY_COLUMNS} FROM keys WHERE key_hash = %s", (key_hash,))
    row = await cur.fetchone()
    return None if row is None else KeyRecord(*row)


async def list_keys(conn: Conn, org: str) -> list[KeyRecord]:
    """The organization's keys, oldest first, revoked ones included."""
    cur = await conn.execute(
        f"SELECT {_KEY_COLUMNS} FROM keys WHERE org = %s ORDER BY created_at, id", (org,)
    )
    return [KeyRecord(*r) for r in await cur.fetchall()]


async def revoke_key(conn: Conn, key_id: str, now: float) -> KeyRecord:
    """Mark the key revoked (a second revoke keeps the first time)."""
    await conn.execute(
        "UPDATE keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL", (now, key_id)
    )
    cur = await conn.execute(f"SELECT {_KEY_COLUMNS} FROM keys WHERE id = %s", (key_id,))
    row = await cur.fetchone()
    if row is None:
        raise KeyNotFound(f"no API key with id {key_id!r}; list keys with `pulseloop keys list`")
    return KeyRecord(*row)


async def stats(conn: Conn, steps_since: float) -> StoreStats:
    """Totals over every organization, and latencies of steps finished after a time."""
    cur = await conn.execute("SELECT status, count(*) FROM runs GROUP BY 1")
    runs = {str(s): int(n) for s, n in await cur.fetchall()}
    cur = await conn.execute("SELECT status, count(*) FROM scans GROUP BY 1")
    scans = {str(s): int(n) for s, n in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT finished_at, finished_at - started_at FROM steps WHERE kind = 'do' "
        "AND finished_at > %s ORDER BY finished_at LIMIT %s",
        (steps_since, _MAX_LATENCIES),
    )
    rows = await cur.fetchall()
    latest = max((float(r[0]) for r in rows), default=steps_since)
    return StoreStats(runs, scans, [max(0.0, float(r[1])) for r in rows], latest)
