"""The test session's PostgreSQL: one throwaway server, a fresh database per test.

Each test's database is a copy of a template that was migrated once, so a test pays a
``CREATE DATABASE`` (tens of milliseconds), not a migration. A server that cannot be
started fails every PostgreSQL test: the suite never skips the second backend.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from urllib.parse import urlsplit

import psycopg

from pulseloop.store.postgres import load
from pulseloop.testing.postgres import ThrowawayPostgres

TEMPLATE = "pulseloop_template"
SECRET_KEY = "test-secret-key-shared-by-every-process-of-a-test"
MASTER_KEY = "6d" * 32
"""The master key every process of a PostgreSQL test shares (PULSELOOP_MASTER_KEY)."""


class PgServer:
    """The running server, and databases made for tests."""

    def __init__(self, server: ThrowawayPostgres) -> None:
        self.server = server
        self._names = itertools.count()

    @classmethod
    def start(cls) -> PgServer:
        """Start a server and migrate the template every test database copies."""
        pg = cls(ThrowawayPostgres().start())
        try:
            pg.admin(f"CREATE DATABASE {TEMPLATE}")
            asyncio.run(_migrate(pg.server.url(TEMPLATE)))
        except BaseException:
            pg.server.stop()
            raise
        return pg

    def stop(self) -> None:
        """Stop the server (only the one this session started)."""
        self.server.stop()

    def admin(self, sql: str) -> None:
        """Run one statement as the superuser, outside a transaction."""
        with psycopg.connect(self.server.url(), autocommit=True) as conn:
            conn.execute(sql.encode())

    def create_database(self, *, empty: bool = False) -> str:
        """A fresh database (migrated, unless ``empty``); its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        template = "template0" if empty else TEMPLATE
        self.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.server.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a test's database, closing any connection left on it."""
        self.admin(f"DROP DATABASE IF EXISTS {urlsplit(url).path.lstrip('/')} WITH (FORCE)")


async def _migrate(url: str) -> None:
    store = load()(url)
    await store.open()
    await store.close()
