"""Storage: one :class:`Store` protocol, a backend per database."""

from __future__ import annotations

from urllib.parse import urlsplit

from pulseloop.errors import StoreError
from pulseloop.store.base import Store

__all__ = ["Store", "is_postgres_url", "open_store", "sqlite_path"]

_POSTGRES_SCHEMES = ("postgresql", "postgres")


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


def is_postgres_url(url: str) -> bool:
    """True for ``postgresql://...`` and ``postgres://...`` URLs."""
    return urlsplit(url).scheme in _POSTGRES_SCHEMES


def open_store(url: str, *, for_worker: bool = False, encrypt: bool = True) -> Store:
    """A (not yet opened) store for a database URL; ``for_worker`` tunes it for writing.

    Patient payloads are encrypted at rest (:mod:`pulseloop.store.sealed`) under the master
    key from ``PULSELOOP_MASTER_KEY`` (or its key file), loaded when the store opens.
    ``encrypt=False`` is for benchmarks measuring what encryption costs (and tests of
    databases from before it): it stores plaintext and cannot read what an encrypted store
    wrote.
    """
    backend = _backend(url, for_worker)
    if not encrypt:
        return backend
    from pulseloop.store.sealed import EncryptedStore, load_master_key

    return EncryptedStore(backend, lambda: load_master_key(url))  # type: ignore[arg-type]


def _backend(url: str, for_worker: bool) -> Store:
    path = sqlite_path(url)
    if path is not None:
        from pulseloop.store.sqlite import SqliteStore

        return SqliteStore(path, reserve_wal=for_worker)
    if is_postgres_url(url):
        from pulseloop.store import postgres

        return postgres.load()(url)
    raise StoreError(
        f"unsupported database URL {url!r}; pulseloop supports sqlite:///path.db and "
        "postgresql://user@host/dbname"
    )
