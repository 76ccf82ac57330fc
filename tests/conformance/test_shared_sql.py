"""The SQL written once (``pulseloop.store.sql``) is valid on both backends' schemas."""

from __future__ import annotations

import re
import sqlite3

import psycopg

from pulseloop.store import Store, sql, sqlite_path

_VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE")
STATEMENTS = {
    name: value
    for name, value in vars(sql).items()
    if name.isupper() and isinstance(value, str) and value.startswith(_VERBS)
}


def test_lite_swaps_placeholders_and_nothing_else() -> None:
    assert sql.lite("UPDATE t SET a = %s WHERE b = %s") == "UPDATE t SET a = ? WHERE b = ?"
    assert len(STATEMENTS) >= 20
    for name, statement in STATEMENTS.items():
        assert "?" not in statement, name
        assert not re.search(r"%(?!s)", statement), f"{name} holds a literal %"


async def test_every_shared_statement_prepares_on_this_backend(db_url: str, store: Store) -> None:
    """EXPLAIN each statement with NULL parameters: a typo, or a column one backend's
    schema lacks, fails here instead of in the one code path that runs it."""
    path = sqlite_path(db_url)
    if path is not None:
        conn = sqlite3.connect(path)
        try:
            for name, statement in STATEMENTS.items():
                params = [None] * statement.count("%s")
                assert conn.execute("EXPLAIN " + sql.lite(statement), params), name
        finally:
            conn.close()
        return
    async with await psycopg.AsyncConnection.connect(db_url) as pg:
        for name, statement in STATEMENTS.items():
            params = [None] * statement.count("%s")
            try:
                await pg.execute("EXPLAIN " + statement, params)
            except psycopg.Error as exc:
                raise AssertionError(f"{name}: {exc}") from exc
