"""Organizations, API keys and the cross-organization counters ``/metrics`` reads, in SQLite.

Keys are looked up by their SHA-256 only: the key itself never reaches the database. A
revoked key keeps its row; :func:`key_by_hash` returns it with ``revoked_at`` set and the
caller refuses it.

The counters in :func:`stats` are the one read that spans organizations: they are totals
with no organization, run or scan named, for an operator's Prometheus, never for an org.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pulseloop.store import sql
from pulseloop.store.base import KeyRecord, OrgRecord, StoreStats
from pulseloop.store.refusals import key_not_found, org_exists, org_not_found
from pulseloop.store.sql import lite

_MAX_LATENCIES = 10_000  # step latencies read per scrape, at most


def create_org(conn: sqlite3.Connection, name: str, now: float) -> OrgRecord:
    """Insert an organization (OrgExists if the name is taken)."""
    if get_org(conn, name) is not None:
        raise org_exists(name)
    conn.execute("INSERT INTO orgs (name, created_at) VALUES (?, ?)", (name, now))
    return OrgRecord(name, now)


def ensure_org(conn: sqlite3.Connection, name: str, now: float) -> OrgRecord:
    """The organization, created if missing."""
    conn.execute("INSERT OR IGNORE INTO orgs (name, created_at) VALUES (?, ?)", (name, now))
    found = get_org(conn, name)
    assert found is not None
    return found


def get_org(conn: sqlite3.Connection, name: str) -> OrgRecord | None:
    """One organization, or None."""
    row = conn.execute(lite(sql.GET_ORG), (name,)).fetchone()
    return None if row is None else OrgRecord(*row)


def list_orgs(conn: sqlite3.Connection) -> list[OrgRecord]:
    """Every organization, oldest first."""
    return [OrgRecord(*r) for r in conn.execute(lite(sql.LIST_ORGS))]


def create_key(
    conn: sqlite3.Connection, org: str, key_id: str, key_hash: str, now: float
) -> KeyRecord:
    """Store a new key's hash for ``org`` (OrgNotFound if there is no such org)."""
    if get_org(conn, org) is None:
        raise org_not_found(org)
    conn.execute(lite(sql.INSERT_KEY), (key_id, org, key_hash, now))
    return KeyRecord(key_id, org, now, None)


def key_by_hash(conn: sqlite3.Connection, key_hash: str) -> KeyRecord | None:
    """The key with this hash (revoked ones too), or None."""
    row = conn.execute(lite(sql.KEY_BY_HASH), (key_hash,)).fetchone()
    return None if row is None else KeyRecord(*row)


def list_keys(conn: sqlite3.Connection, org: str) -> list[KeyRecord]:
    """The organization's keys, oldest first, revoked ones included."""
    return [KeyRecord(*r) for r in conn.execute(lite(sql.KEYS_OF_ORG), (org,))]


def revoke_key(conn: sqlite3.Connection, key_id: str, now: float) -> KeyRecord:
    """Mark the key revoked (idempotent: a second revoke keeps the first time)."""
    conn.execute(lite(sql.REVOKE_KEY), (now, key_id))
    row = conn.execute(lite(sql.KEY_BY_ID), (key_id,)).fetchone()
    if row is None:
        raise key_not_found(key_id)
    return KeyRecord(*row)


def stats(conn: sqlite3.Connection, steps_since: float) -> StoreStats:
    """Totals over every organization, and latencies of steps finished after a time."""
    counts: dict[str, dict[str, int]] = {"run": {}, "scan": {}}
    for kind, status, n in conn.execute("SELECT kind, status, n FROM status_counts"):
        counts[kind][status] = n  # counters kept by triggers: O(statuses), not O(runs)
    runs, scans = counts["run"], counts["scan"]
    rows: list[Any] = conn.execute(
        lite(sql.STEP_LATENCIES), (steps_since, _MAX_LATENCIES)
    ).fetchall()
    latest = max((r[0] for r in rows), default=steps_since)
    return StoreStats(runs, scans, [max(0.0, float(r[1])) for r in rows], latest)
