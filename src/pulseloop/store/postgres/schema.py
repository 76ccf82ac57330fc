"""Migrating a PostgreSQL database safely, however many processes boot at once.

The version lives in a one-row table, ``pulseloop_schema``. A process first reads it
without writing anything: a newer version than this code knows is refused with
:class:`SchemaTooNew` and the database is left untouched; the current version needs
nothing more. Otherwise it takes a session-level advisory lock, reads the version again
(another process may have migrated meanwhile) and applies each missing migration in its
own transaction. Concurrent first boots queue on the lock instead of racing to create the
same tables (a race that leaves half-made catalogs behind); a process that dies holding
the lock releases it with its session.
"""

from __future__ import annotations

from typing import Any

import psycopg

from pulseloop.errors import SchemaTooNew
from pulseloop.store.migrations import latest_version, migrations_for

MIGRATION_LOCK = 0x70756C73_65000001
"""The advisory lock key that serializes migrations (any value unique to pulseloop)."""


async def schema_version(conn: psycopg.AsyncConnection[Any]) -> int:
    """The database's schema version (0: pulseloop never migrated it); reads only."""
    cur = await conn.execute("SELECT to_regclass('pulseloop_schema') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return 0
    cur = await conn.execute("SELECT max(version) FROM pulseloop_schema")
    row = await cur.fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


def _refuse_newer(found: int, display: str) -> None:
    latest = latest_version("postgres")
    if found > latest:
        raise SchemaTooNew(
            f"the database {display} has schema version {found}, newer than this pulseloop "
            f"understands ({latest}); upgrade pulseloop, it was left untouched"
        )


async def migrate(conn: psycopg.AsyncConnection[Any], display: str) -> int:
    """Bring the schema up to date (under the advisory lock); return the version."""
    found = await schema_version(conn)
    _refuse_newer(found, display)
    latest = latest_version("postgres")
    if found == latest:
        return found
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        found = await schema_version(conn)
        _refuse_newer(found, display)
        for migration in migrations_for("postgres"):
            if migration.version <= found:
                continue
            async with conn.transaction():
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS pulseloop_schema (version integer NOT NULL)"
                )
                await conn.execute(migration.sql.encode())  # no parameters: a whole script
                await conn.execute("DELETE FROM pulseloop_schema")
                await conn.execute(
                    "INSERT INTO pulseloop_schema (version) VALUES (%s)", (migration.version,)
                )
        return latest
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
