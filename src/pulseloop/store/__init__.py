"""Storage: one :class:`Store` protocol, a backend per database."""

from __future__ import annotations

from pulseloop.errors import StoreError
from pulseloop.store.base import Store

__all__ = ["Store", "open_store", "sqlite_path"]


def sqlite_path(url: str) -> str | None:
    """The file path of a ``sqlite:///relative`` / ``sqlite:////absolute`` URL, else None."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise StoreError(f"database URL {url!r} names no file; e.g. sqlite:///runs.db")
        return path
    if url.startswith("sqlite://"):
        raise StoreError(
            f"database URL {url!r} is not understood; write sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    return None


def open_store(url: str, *, for_worker: bool = False) -> Store:
    """A (not yet opened) store for a database URL; ``for_worker`` tunes it for writing."""
    path = sqlite_path(url)
    if path is not None:
        from pulseloop.store.sqlite import SqliteStore

        return SqliteStore(path, reserve_wal=for_worker)
    raise StoreError(
        f"unsupported database URL {url!r}; pulseloop supports sqlite:///path.db "
        "(PostgreSQL support is planned)"
    )
