"""Opening a SQLite file safely: refuse newer schemas, apply numbered migrations."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from pulseloop.errors import SchemaTooNew, StoreError
from pulseloop.store.migrations import latest_version, migrations_for


def prepare_path(path: str) -> None:
    """Create the database's folder; fail clearly if it cannot be written."""
    if path == ":memory:":
        return
    folder = Path(path).resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the database folder {str(folder)!r}: {exc.strerror}; "
            "choose a writable path with --db or PULSELOOP_DATABASE_URL"
        ) from exc
    target = Path(path)
    writable = os.access(target, os.W_OK) if target.exists() else os.access(folder, os.W_OK)
    if not writable:
        raise StoreError(
            f"the database path {path!r} is not writable; choose a writable path with "
            "--db or PULSELOOP_DATABASE_URL"
        )
    owner_only(target)


def owner_only(target: Path) -> None:
    """Make the database readable by its owner alone (it holds patient data).

    A new file is created 0600 before SQLite opens it; SQLite gives its ``-wal`` and
    ``-shm`` files the main file's mode. Files an older version left 0644 are tightened.
    """
    os.close(os.open(target, os.O_CREAT | os.O_RDWR, 0o600))
    for file in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)


def schema_version(path: str) -> int:
    """The file's schema version, read without changing anything in it."""
    if path == ":memory:" or not Path(path).exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"{path!r} is not a pulseloop database ({exc}); point --db at another file"
        ) from exc


def check_version(path: str) -> int:
    """Refuse a file written by a newer pulseloop; return its version."""
    found = schema_version(path)
    latest = latest_version("sqlite")
    if found > latest:
        raise SchemaTooNew(
            f"the database {path!r} has schema version {found}, newer than this pulseloop "
            f"understands ({latest}); upgrade pulseloop, it was left untouched"
        )
    return found


def migrate(conn: sqlite3.Connection) -> None:
    """Apply every migration newer than the file's ``user_version``, each atomically."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for migration in migrations_for("sqlite"):
        if migration.version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {migration.version:d}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(sql: str) -> list[str]:
    """Split a script into statements; a trigger's ``BEGIN ... END;`` body stays whole."""
    statements: list[str] = []
    pending = ""
    for line in sql.splitlines():
        if line.lstrip().startswith("--"):
            continue
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements
