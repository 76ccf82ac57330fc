"""The re-encryption pass runs only when it may find something: after a rotation or an
upgrade, never at every worker start on a fully sealed database (migration 0013)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest

from pulseloop import App
from pulseloop.store.migrations import migrations_for
from pulseloop.store.postgres.connection import parse_url
from pulseloop.store.sealed import EncryptedStore, Resealer
from pulseloop.store.sealed.columns import COLUMNS
from pulseloop.store.sealed.resealer import (
    MARKED_KEYS,
    SETTLE_S,
    due_orgs,
    mark_resealed,
    reseal_all,
)
from pulseloop.testing import FakeClock
from tests.helpers import eventually
from tests.pg import PgServer
from tests.store.test_encryption import PHONE, FollowUp, opened, payload_key_ids, raw_database

WALKS = {column.select for column in COLUMNS}
"""The statements that read payload rows: a pass runs them, a check must not."""


class Statements:
    """Every statement the real backend runs for the encryption layer (a spy, not a mock:
    each still runs)."""

    def __init__(self, store: EncryptedStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[str] = []
        inner = store.inner.payload_sql

        async def counted(statements: Sequence[tuple[str, tuple[Any, ...]]]) -> Any:
            self.seen += [sql for sql, _ in statements]
            return await inner(statements)

        monkeypatch.setattr(store.inner, "payload_sql", counted)

    def walks(self) -> int:
        """How many payload-row reads ran."""
        return sum(sql in WALKS for sql in self.seen)


async def _checked(store: EncryptedStore, **options: Any) -> Resealer:
    """A worker start's resealer, run until idle, stopped."""
    resealer = Resealer(store, **options)
    resealer.start()
    try:
        await resealer.idle.wait()
    finally:
        await resealer.stop()
    return resealer


async def test_a_start_on_a_sealed_database_walks_no_row_until_a_rotation(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with opened(db_url) as store:
        for i in range(5):
            await store.create_run("a", f"r{i}", "loop", json.dumps({"phone": PHONE}), 1.0)
        spy = Statements(store, monkeypatch)
        first = await _checked(store)
        assert (first.passes, spy.walks()) == (0, 0)  # one key, never rotated: nothing due

        old = await store.keyring.current("a")
        new = await store.rotate_data_key("a")
        rotated = await _checked(store, settle_s=0.0)
        assert rotated.passes == 1 and spy.walks() == len(COLUMNS)
        assert await payload_key_ids(store) == {new.id} != {old.id}
        (marked,) = await store.payload_sql([(MARKED_KEYS, ())])
        assert marked == [(new.id,)]

        spy.seen.clear()
        again = await _checked(store)
        assert (again.passes, spy.walks()) == (0, 0)


async def test_a_key_is_marked_only_by_a_pass_begun_after_every_process_refreshed(
    db_url: str,
) -> None:
    """Other processes may seal with the old key for ``REFRESH_S`` after a rotation: a pass
    begun sooner does not mark the new key, so passes go on until one begins later."""
    async with opened(db_url) as store:
        await store.create_run("a", "r1", "loop", "{}", 1.0)
        new = await store.rotate_data_key("a")
        assert await reseal_all(store) == 1
        await mark_resealed(store, new.created_at + SETTLE_S - 1.0, SETTLE_S)
        assert await due_orgs(store) == {"a"}
        await mark_resealed(store, new.created_at + SETTLE_S, SETTLE_S)
        assert await due_orgs(store) == set()


async def test_a_deadline_timeout_is_sealed_at_once(db_url: str) -> None:
    async with opened(db_url) as store:
        await store.create_run("a", "r1", "loop", "{}", 1.0, deadline_at=5.0)
        expired, _ = await store.expire_deadlines("a", 10.0, {"type": "RunTimeout"})
        assert len(expired) == 1
        assert None not in await payload_key_ids(store)
        run = await store.get_run("a", "r1")
        assert run is not None and run.error == {"type": "RunTimeout"}


def _at_version_8(backend: str, db_url: str, pg_server: PgServer | None) -> str:
    """A database as pulseloop left it before encryption (schema 8) with one plaintext run;
    its URL."""
    insert = (
        "INSERT INTO runs (org, id, loop, status, input, created_at, updated_at, run_key) "
        "VALUES ('default', 'old', 'follow-up', 'cancelled', ?, 0, 0, 'old')"
    )
    body = json.dumps({"x": PHONE})
    old = [m for m in migrations_for(backend) if m.version <= 8]
    if backend == "sqlite":
        path = db_url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, isolation_level=None)
        for migration in old:
            conn.executescript(migration.sql)
        conn.execute("PRAGMA user_version = 8")
        conn.execute(insert, (body,))
        conn.close()
        return db_url
    assert pg_server is not None
    url = pg_server.create_database(empty=True)
    with psycopg.connect(parse_url(url).conninfo, autocommit=True) as pg:
        for migration in old:
            pg.execute(migration.sql.encode())
        pg.execute("CREATE TABLE pulseloop_schema (version integer NOT NULL)")
        pg.execute("INSERT INTO pulseloop_schema (version) VALUES (8)")
        pg.execute(insert.replace("?", "%s").encode(), (body,))
    return url


@pytest.fixture
def old_url(backend: str, db_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A schema-8 database with a plaintext run, on the test's backend."""
    server = request.getfixturevalue("pg_server") if backend == "postgres" else None
    url = _at_version_8(backend, db_url, server)
    yield url
    if server is not None:
        server.drop_database(url)


async def test_a_worker_seals_a_database_from_before_encryption_once(
    old_url: str, clock: FakeClock
) -> None:
    assert PHONE.encode() in raw_database(old_url)
    async with App([FollowUp], old_url, clock=clock, poll_interval="50 milliseconds") as app:
        store = app.store
        assert isinstance(store, EncryptedStore)

        async def sealed() -> bool:
            return None not in await payload_key_ids(store)

        await eventually(sealed, "the worker's first pass sealing the old run")
        assert (await app.get_run("old")).body == {"x": PHONE}
        resealer = app.runtime.resealer
        assert resealer is not None
        await resealer.idle.wait()
    async with App([FollowUp], old_url, clock=clock, poll_interval="50 milliseconds") as app:
        resealer = app.runtime.resealer
        assert resealer is not None
        await resealer.idle.wait()
        assert resealer.passes == 0  # the upgrade's pass is done: this start walks nothing
