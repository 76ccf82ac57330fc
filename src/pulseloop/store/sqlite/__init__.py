"""The embedded SQLite backend."""

from pulseloop.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
