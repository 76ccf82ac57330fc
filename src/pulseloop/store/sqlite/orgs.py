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

from pulseloop.errors import KeyNotFound, OrgExists, OrgNotFound
from pulseloop.store.base import KeyRecord, OrgRecord, StoreStats

_KEY_COLUMNS = "id, org, created_at, revoked_at"
_MAX_LATENCIES = 10_000  # step latencies read per scrape, at most


def create_org(conn: sqlite3.Connection, name: str, now: float) -> OrgRecord:
    """Insert an organization (OrgExists if the name is taken)."""
    if conn.execute("SELECT 1 FROM orgs WHERE name = ?", (name,)).fetchone():
        raise OrgExists(f"an organization named {name!r} exists already; pick another name")
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
    row = conn.execute("SELECT name, created_at FROM orgs WHERE name = ?", (name,)).fetchone()
    return None if row is None else OrgRecord(*row)


def list_orgs(conn: sqlite3.Connection) -> list[OrgRecord]:
    """Every organization, oldest first."""
    return [OrgRecord(*r) for r in conn.execute("SELECT name, created_at FROM orgs ORDER BY 2")]


def create_key(
    conn: sqlite3.Connection, org: str, key_id: str, key_hash: str, now: float
) -> KeyRecord:
    """Store a new key's hash for ``org`` (OrgNotFound if there is no such org)."""
    if get_org(conn, org) is None:
        raise OrgNotFound(
            f"no organization named {org!r}; create it with `pulseloop orgs create {org}`"
        )
    conn.execute(
        "INSERT INTO keys (id, org, key_hash, created_at) VALUES (?, ?, ?, ?)",
        (key_id, org, key_hash, now),
    )
    return KeyRecord(key_id, org, now, None)


def key_by_hash(conn: sqlite3.Connection, key_hash: str) -> KeyRecord | None:
    """The key with this hash (revoked ones too), or None."""
    row = conn.execute(
        f"SELECT {_KEY_COLUMNS} FROM keys WHERE key_hash = ?", (key_hash,)
    ).fetchone()
    return None if row is None else KeyRecord(*row)


def list_keys(conn: sqlite3.Connection, org: str) -> list[KeyRecord]:
    """The organization's keys, oldest first, revoked ones included."""
    return [
        KeyRecord(*r)
        for r in conn.execute(
            f"SELECT {_KEY_COLUMNS} FROM keys WHERE org = ? ORDER BY created_at, id", (org,)
        )
    ]


def revoke_key(conn: sqlite3.Connection, key_id: str, now: float) -> KeyRecord:
    """Mark the key revoked (idempotent: a second revoke keeps the first time)."""
    conn.execute(
        "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, key_id)
    )
    row = conn.execute(f"SELECT {_KEY_COLUMNS} FROM keys WHERE id = ?", (key_id,)).fetchone()
    if row is None:
        raise KeyNotFound(f"no API key with id {key_id!r}; list keys with `pulseloop keys list`")
    return KeyRecord(*row)


def stats(conn: sqlite3.Connection, steps_since: float) -> StoreStats:
    """Totals over every organization, and latencies of steps finished after a time."""
    counts: dict[str, dict[str, int]] = {"run": {}, "scan": {}}
    for kind, status, n in conn.execute("SELECT kind, status, n FROM status_counts"):
        counts[kind][status] = n  # counters kept by triggers: O(statuses), not O(runs)
    runs, scans = counts["run"], counts["scan"]
    rows: list[Any] = conn.execute(
        "SELECT finished_at, finished_at - started_at FROM steps WHERE kind = 'do' "
        "AND finished_at > ? ORDER BY finished_at LIMIT ?",
        (steps_since, _MAX_LATENCIES),
    ).fetchall()
    latest = max((r[0] for r in rows), default=steps_since)
    return StoreStats(runs, scans, [max(0.0, float(r[1])) for r in rows], latest)
