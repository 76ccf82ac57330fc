"""``pulseloop audit verify`` on both backends: an intact chain passes; an edited row, a
deleted row and deleted newest rows each fail, naming the row. The table refuses edits
itself, so each test first drops that guard, as someone with the database's rights could."""

from __future__ import annotations

import asyncio
import sqlite3

import psycopg
import pytest

from pulseloop.store import open_store, sqlite_path
from pulseloop.store.audit import AuditEntry, AuditRecord
from tests.cli.helpers import invoke

DROP_GUARDS = {
    "sqlite": ["DROP TRIGGER audit_no_update", "DROP TRIGGER audit_no_delete"],
    "postgres": ["DROP TRIGGER audit_no_update ON audit"],
}


def raw(db_url: str, *statements: str) -> None:
    """Run ``statements`` behind the store's back, committed."""
    path = sqlite_path(db_url)
    if path is not None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            for statement in statements:
                conn.execute(statement)
        finally:
            conn.close()
        return
    with psycopg.connect(db_url, autocommit=True) as pg:
        for statement in statements:
            pg.execute(statement.encode())


def seed(db_url: str, rows: int = 5) -> None:
    """``rows`` audit rows of clinic-a and two of clinic-b."""

    async def write() -> None:
        store = open_store(db_url)
        await store.open()
        try:
            for org, count in (("clinic-a", rows), ("clinic-b", 2)):
                for n in range(count):
                    entry = AuditEntry(org, 1.0 + n, "kid", "read_run", "run", f"r{n}", "::1")
                    await store.audit.append(entry)
        finally:
            await store.close()

    asyncio.run(write())


def test_an_intact_trail_verifies(db_url: str) -> None:
    seed(db_url)
    result = invoke("audit", "verify", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert "clinic-a: 5 rows, chain intact" in result.output
    assert "clinic-b: 2 rows, chain intact" in result.output


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        ("UPDATE audit SET object_id = 'r9' WHERE org = 'clinic-a' AND seq = 3",
         "org 'clinic-a', row 3: was edited"),
        ("UPDATE audit SET actor = 'someone' WHERE org = 'clinic-a' AND seq = 5",
         "org 'clinic-a', row 5: was edited"),
        ("DELETE FROM audit WHERE org = 'clinic-a' AND seq = 2",
         "org 'clinic-a', row 3: rows 2..2 before it were deleted"),
        ("DELETE FROM audit WHERE org = 'clinic-a' AND seq >= 4",
         "org 'clinic-a', row 4: the chain ends at row 3 but its head records row 5"),
        ("DELETE FROM audit WHERE org = 'clinic-a' AND seq = 1",
         "org 'clinic-a', row 2: rows 1..1 before it were deleted"),
    ],
)  # fmt: skip
def test_an_edited_or_deleted_row_fails_verification_naming_it(
    db_url: str, backend: str, tamper: str, named: str
) -> None:
    seed(db_url)
    raw(db_url, *DROP_GUARDS[backend], tamper)
    result = invoke("audit", "verify", "--db", db_url)
    assert result.exit_code == 1, result.output
    assert named in result.output
    assert "clinic-b: 2 rows, chain intact" in result.output
    only_b = invoke("audit", "verify", "--org", "clinic-b", "--db", db_url)
    assert only_b.exit_code == 0, only_b.output


def test_a_rehashed_row_still_fails_verification(db_url: str, backend: str) -> None:
    seed(db_url)
    raw(db_url, *DROP_GUARDS[backend])
    # rewrite row 5's hash too: its head (and any later row) no longer agree
    raw(db_url, "UPDATE audit SET hash = 'f' || substr(hash, 2) WHERE org = 'clinic-a' AND seq = 5")
    result = invoke("audit", "verify", "--org", "clinic-a", "--db", db_url)
    assert result.exit_code == 1
    assert "org 'clinic-a', row 5" in result.output


@pytest.mark.parametrize("statement", ["UPDATE audit SET actor = 'x'", "DELETE FROM audit"])
def test_the_table_refuses_edits_and_deletes(db_url: str, statement: str) -> None:
    seed(db_url)
    with pytest.raises((sqlite3.IntegrityError, psycopg.Error), match="append-only"):
        raw(db_url, statement)
    assert invoke("audit", "verify", "--db", db_url).exit_code == 0


def test_revoking_a_key_writes_one_row(db_url: str) -> None:
    assert invoke("orgs", "create", "clinic-a", "--db", db_url).exit_code == 0
    key = invoke("keys", "create", "--org", "clinic-a", "--db", db_url).output.strip()
    kid = key.split("_")[1]
    assert invoke("keys", "revoke", kid, "--db", db_url).exit_code == 0

    async def read() -> list[AuditRecord]:
        store = open_store(db_url)
        await store.open()
        try:
            return await store.audit.chain("clinic-a", 0, 100)
        finally:
            await store.close()

    [row] = asyncio.run(read())
    assert (row.action, row.object_kind, row.object_id) == ("revoke_key", "key", kid)
    assert (row.actor, row.address) == ("cli", "local")
    assert invoke("audit", "verify", "--db", db_url).exit_code == 0
