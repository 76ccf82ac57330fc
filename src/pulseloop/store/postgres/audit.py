"""The audit trail on PostgreSQL (:class:`~pulseloop.store.audit.AuditStore`).

An append locks its organization's ``audit_heads`` row (``FOR UPDATE``, after creating it
if it is the chain's first row), so concurrent appends from any number of processes take
turns and the chain never forks; appends of different organizations do not wait for each
other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

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

Conn = psycopg.AsyncConnection[Any]
Transact = Callable[..., Awaitable[Any]]


async def append(conn: Conn, entry: AuditEntry) -> AuditRecord:
    """Insert ``entry`` after its chain's head (locked) and move the head."""
    await conn.execute(
        "INSERT INTO audit_heads (org, seq, hash) VALUES (%s, 0, '') ON CONFLICT DO NOTHING",
        (entry.org,),
    )
    cur = await conn.execute(
        "SELECT seq, hash FROM audit_heads WHERE org = %s FOR UPDATE", (entry.org,)
    )
    found = await cur.fetchone()
    assert found is not None  # inserted above
    head = None if int(found[0]) == 0 else (int(found[0]), str(found[1]))
    record = chained(entry, head)
    await conn.execute(INSERT, row_values(record))
    await conn.execute(
        "UPDATE audit_heads SET seq = %s, hash = %s WHERE org = %s",
        (record.seq, record.hash, record.org),
    )
    return record


class PostgresAudit:
    """:class:`~pulseloop.store.audit.AuditStore` over the store's pooled transactions."""

    def __init__(self, transact: Transact) -> None:
        self._tx = transact

    async def append(self, entry: AuditEntry) -> AuditRecord:
        # a rerun after COMMIT would add a second row: not idempotent
        record: AuditRecord = await self._tx(lambda c: append(c, entry), idempotent=False)
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
        return await self._select(newest_first(where), (*values, limit))

    async def chain(self, org: str, after_seq: int, limit: int) -> list[AuditRecord]:
        return await self._select(CHAIN_PAGE, (org, after_seq, limit))

    async def head(self, org: str) -> tuple[int, str] | None:
        async def read(conn: Conn) -> Any:
            cur = await conn.execute(
                "SELECT seq, hash FROM audit_heads WHERE org = %s AND seq > 0", (org,)
            )
            return await cur.fetchone()

        found = await self._tx(read)
        return None if found is None else (int(found[0]), str(found[1]))

    async def orgs(self) -> list[str]:
        async def read(conn: Conn) -> Any:
            cur = await conn.execute(ORGS)
            return await cur.fetchall()

        return [str(row[0]) for row in await self._tx(read)]

    async def _select(self, sql: str, values: tuple[Any, ...]) -> list[AuditRecord]:
        async def read(conn: Conn) -> Any:
            cur = await conn.execute(sql, values)
            return await cur.fetchall()

        return [AuditRecord(*row) for row in await self._tx(read)]
