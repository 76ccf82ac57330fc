"""The SQLite database holds patient data: its files are readable by their owner only."""

from __future__ import annotations

from pathlib import Path

from pulseloop.store.sqlite.store import SqliteStore


async def test_database_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    old.chmod(0o644)
    for path in (tmp_path / "new.db", old):
        store = SqliteStore(str(path))
        await store.open()
        try:
            await store.ensure_org("acme", 0.0)  # a write: the WAL exists now
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(f.exists() for f in files)
            modes = {f.name: oct(f.stat().st_mode & 0o777) for f in files}
        finally:
            await store.close()
        assert set(modes.values()) == {"0o600"}, modes
