"""The PostgreSQL backend: many workers on many machines share one database.

Needs the ``postgres`` extra (psycopg 3 and psycopg_pool); :func:`load` names it when it
is missing. Nothing outside ``store/`` imports the driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pulseloop.errors import StoreError

if TYPE_CHECKING:
    from pulseloop.store.postgres.store import PostgresStore

__all__ = ["load"]

_DRIVER_MODULES = {"psycopg", "psycopg_pool", "psycopg_binary", "psycopg_c"}


def load() -> type[PostgresStore]:
    """The store class, importing the driver now; a missing extra is a clear error."""
    try:
        from pulseloop.store.postgres.store import PostgresStore
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in _DRIVER_MODULES:
            raise
        raise StoreError(
            "PostgreSQL URLs need the `postgres` extra (psycopg 3 and psycopg_pool); "
            "install it with: pip install 'pulseloop[postgres]'"
        ) from exc
    return PostgresStore
