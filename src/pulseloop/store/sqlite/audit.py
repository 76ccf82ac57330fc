"""The audit trail in SQLite (:class:`~pulseloop.store.audit.AuditStore`).

SQLite has one writer (the store's database thread, ``BEGIN IMMEDIATE`` across
processes), so reading the chain's head and appending after it cannot interleave with
another append: the chain never forks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from pulseloop.store.audit import (
    CHAIN_PAGE,
    INSERT,
    ORGS,
    AuditEntry,
    AuditRecord,
    chained,
    filtered,
    newest_first,
    row_values,
)
from pulseloop.store.sql import lite

Runner = Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]


def append(conn: sqlite3.Connection, entry: AuditEntry) -> AuditRecord:
    """Insert ``entry`` after its chain's head and move the head."""
    found = conn.execute("SELECT seq, hash FROM audit_heads WHERE org = ?", (entry.org,)).fetchone()
    record = chained(entry, None if found is None else (int(found[0]), str(found[1])))
    conn.execute(lite(INSERT), row_values(record))
    conn.execute(
        "INSERT INTO audit_heads (org, seq, hash) VALUES (?, ?, ?) "
        "ON CONFLICT (org) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        (record.org, record.seq, record.hash),
    )
    return record


class SqliteAudit:
    """:class:`~pulseloop.store.audit.AuditStore` on the store's database thread."""

    def __init__(self, run: Runner) -> None:
        self._run = run

    async def append(self, entry: AuditEntry) -> AuditRecord:
        record: AuditRecord = await self._run(lambda c: append(c, entry))
        return record

    async def rows(
        self,
        org: str,
        *,
        object_kind: str | None = None,
        object_id: str | None = None,
        since: float | None = None,
        before: float | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[AuditRecord]:
        where, values = filtered(org, object_kind, object_id, since, before, before_seq)
        return await self._select(lite(newest_first(where)), (*values, limit))

    async def chain(self, org: str, after_seq: int, limit: int) -> list[AuditRecord]:
        return await self._select(lite(CHAIN_PAGE), (org, after_seq, limit))

    async def head(self, org: str) -> tuple[int, str] | None:
        sql = "SELECT seq, hash FROM audit_heads WHERE org = ?"
        found = await self._run(lambda c: c.execute(sql, (org,)).fetchone())
        return None if found is None else (int(found[0]), str(found[1]))

    async def orgs(self) -> list[str]:
        found = await self._run(lambda c: c.execute(ORGS).fetchall())
        return [str(row[0]) for row in found]

    async def _select(self, sql: str, values: tuple[Any, ...]) -> list[AuditRecord]:
        found = await self._run(lambda c: c.execute(sql, values).fetchall())
        return [AuditRecord(*row) for row in found]
