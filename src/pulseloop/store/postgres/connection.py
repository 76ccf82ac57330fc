"""Reading a ``postgresql://`` URL, and the connections a store keeps.

A store holds at most ``pool_size`` pooled connections for reads and one-off writes (each
borrowed for one transaction, never across a step's callback), one connection for the
group-commit writer, and one for LISTEN. pulseloop's own URL parameters are taken out
before the rest goes to libpq:

* ``listen=off``: poll only, never LISTEN. Needed behind PgBouncer in transaction mode,
  which silently drops LISTEN registrations; the poll alone is correct, only slower to
  notice work queued by other processes.
* ``pool_size=N``: the most pooled connections (default 8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg_pool import AsyncConnectionPool

from pulseloop.errors import StoreError

SCHEMES = ("postgresql", "postgres")
DEFAULT_POOL_SIZE = 8
_OFF = {"off", "0", "false", "no"}
_ON = {"on", "1", "true", "yes"}


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    """What a store needs to know about its database."""

    conninfo: str
    """The URL as libpq reads it (pulseloop's own parameters removed)."""
    display: str
    """The URL without its password, for messages."""
    listen: bool
    pool_size: int


def is_postgres_url(url: str) -> bool:
    """True for ``postgresql://...`` and ``postgres://...``."""
    return urlsplit(url).scheme in SCHEMES


def parse_url(url: str) -> PostgresSettings:
    """Split pulseloop's parameters from libpq's; a bad value names itself."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise StoreError(f"{url!r} is not a PostgreSQL URL; write postgresql://host/dbname")
    listen, pool_size, rest = True, DEFAULT_POOL_SIZE, []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "listen":
            if value.lower() not in _OFF | _ON:
                raise StoreError(f"listen={value!r} in the database URL: use listen=off or on")
            listen = value.lower() in _ON
        elif key == "pool_size":
            if not value.isdigit() or int(value) < 1:
                raise StoreError(f"pool_size={value!r} in the database URL: use a number >= 1")
            pool_size = int(value)
        else:
            rest.append((key, value))
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), ""))
    host = parts.hostname or "localhost"
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    display = f"postgresql://{user}{host}{port}{parts.path}"
    return PostgresSettings(conninfo, display, listen, pool_size)


async def connect(settings: PostgresSettings) -> psycopg.AsyncConnection[Any]:
    """One autocommit connection (transactions are opened explicitly where needed)."""
    return await psycopg.AsyncConnection.connect(
        settings.conninfo, autocommit=True, application_name="pulseloop"
    )


def make_pool(settings: PostgresSettings) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
    """The pool for reads and one-transaction writes (READ COMMITTED, the default)."""
    return AsyncConnectionPool(
        settings.conninfo,
        kwargs={"autocommit": True, "application_name": "pulseloop"},
        min_size=1,
        max_size=settings.pool_size,
        open=False,
        timeout=30.0,
        reconnect_timeout=60.0,
        name="pulseloop",
    )
