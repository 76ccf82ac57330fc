"""Reading a test database behind the store's back: raw rows, and every byte it holds."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from pulseloop.store import sqlite_path
from pulseloop.testing.postgres import find_bindir


def rows(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows ``sql`` (no parameters) selects, on a connection of its own."""
    path = sqlite_path(db_url)
    if path is not None:
        conn = sqlite3.connect(path)
        try:
            return list(conn.execute(sql).fetchall())
        finally:
            conn.close()
    with psycopg.connect(db_url, autocommit=True) as pg:
        return list(pg.execute(sql.encode()).fetchall())


def everything(db_url: str) -> bytes:
    """All the database holds: the SQLite file and its WAL, or a ``pg_dump`` of it."""
    path = sqlite_path(db_url)
    if path is not None:
        files = [Path(path), Path(path + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    dump = subprocess.run(
        [str(find_bindir() / "pg_dump"), "--data-only", db_url],
        capture_output=True,
        check=True,
    )
    return dump.stdout
