"""A process still holding the old master key after ``rotate-master-key`` refuses to wrap
or open data keys with it (both backends): the database records a check value of its
current master key (never the key), at first open and at every rotation."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pulseloop import Event, Loop, Step
from pulseloop.errors import EncryptionKeyError
from pulseloop.store import open_store, sqlite_path
from pulseloop.store.postgres.connection import parse_url
from pulseloop.store.sealed import EncryptedStore
from pulseloop.store.sealed.master import MasterKey, parse_key
from pulseloop.store.sealed.master_check import READ_CHECK, check_value
from tests.cli.helpers import invoke
from tests.conftest import AppFactory
from tests.pg import MASTER_KEY, PgServer
from tests.store.test_encryption import opened


class Note(Loop):
    """Keeps what it is given: a payload sealed with its organization's data key."""

    async def run(self, event: Event, step: Step) -> Any:
        return event.body


def _old_key(db_url: str) -> bytes:
    path = sqlite_path(db_url)
    text = Path(path).with_suffix(".master-key").read_text() if path is not None else MASTER_KEY
    return parse_key(text, "the test's key")


async def _wrapped_rows(store: EncryptedStore) -> list[tuple[Any, ...]]:
    (rows,) = await store.payload_sql([("SELECT id, org, wrapped FROM data_keys", ())])
    return rows


async def test_a_process_left_on_the_old_master_key_wraps_no_new_data_key(
    make_app: AppFactory, db_url: str, tmp_path: Path
) -> None:
    new = secrets.token_hex(32)
    new_file = tmp_path / "new.key"
    new_file.write_text(new)
    async with make_app([Note], org="clinic-a") as app:
        store = app.store
        assert isinstance(store, EncryptedStore)
        run = await app.trigger("note", {"phone": "+1-555-0100"})
        await app.wait_for_run(run.id, timeout="1 minute")

        rotated = await asyncio.to_thread(
            invoke, "keys", "rotate-master-key", "--new-key-file", str(new_file), "--db", db_url
        )
        assert rotated.exit_code == 0, rotated.output

        with pytest.raises(EncryptionKeyError) as refused:
            await store.create_run("clinic-new", "r1", "note", json.dumps({"x": 1}), 5.0)
        message = str(refused.value)
        assert "`pulseloop keys rotate-master-key` replaced it at" in message
        assert "restart this process with the current master key" in message

        # nothing was stored under the old key: every data key opens with the new one
        rows = await _wrapped_rows(store)
        assert [org for _, org, _ in rows] == ["clinic-a"]
        new_key = MasterKey(bytes.fromhex(new), "the new key")
        for key_id, org, wrapped in rows:
            new_key.unwrap(org, key_id, wrapped)
        # what it already holds still reads: its data keys did not change
        assert (await app.get_run(run.id)).output == {"phone": "+1-555-0100"}


async def test_the_guard_is_in_the_insert_itself(db_url: str) -> None:
    """Even a process that has not re-read the check since the rotation (its keyring is
    fresh) inserts nothing: the check and the insert are one transaction."""
    async with opened(db_url) as stale, opened(db_url) as rotator:
        assert isinstance(stale, EncryptedStore) and isinstance(rotator, EncryptedStore)
        from pulseloop.store.sealed.rewrap import rewrap_data_keys

        await rewrap_data_keys(rotator, MasterKey(secrets.token_bytes(32), "the new key"))
        with pytest.raises(EncryptionKeyError, match="replaced it at"):
            await stale.keyring.rotate("clinic-new")  # no load first
        assert await _wrapped_rows(stale) == []
        assert stale.keyring.cached("clinic-new") is None


async def test_the_check_value_is_recorded_at_first_open_and_never_the_key(db_url: str) -> None:
    async with opened(db_url) as store:
        assert isinstance(store, EncryptedStore)
        master = store.keyring.master
        ((kcv, _set_at, rotated_at),) = (await store.payload_sql([(READ_CHECK, ())]))[0]
        assert kcv == check_value(master) and rotated_at is None
        assert master.secret.hex() not in kcv and master.secret.hex()[:16] not in kcv
        # a database from before the check (migration 0019) gets it at its next open
        await store.payload_sql([("DELETE FROM master_key_check", ())])
    async with opened(db_url) as store:
        assert (await store.payload_sql([(READ_CHECK, ())]))[0][0][0] == kcv


async def test_another_key_on_a_database_with_no_data_key_yet_is_refused(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with opened(db_url):
        pass  # first opened with the database's key, no data key made
    monkeypatch.setenv("PULSELOOP_MASTER_KEY", "ab" * 32)
    if _old_key(db_url) == bytes.fromhex("ab" * 32):  # pragma: no cover - the fixture's key
        pytest.fail("the test's other key is the database's key")
    with pytest.raises(EncryptionKeyError, match="is not this database's master key"):
        async with opened(db_url):
            pass


def test_a_fresh_process_on_the_old_key_is_told_it_was_rotated(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def write() -> None:
        store = open_store(db_url)
        await store.open()
        try:
            await store.create_run("clinic-a", "r1", "note", "{}", 1.0)
        finally:
            await store.close()

    asyncio.run(write())
    old = _old_key(db_url)
    new_file = tmp_path / "new.key"
    new_file.write_text(secrets.token_hex(32))
    rotated = invoke("keys", "rotate-master-key", "--new-key-file", str(new_file), "--db", db_url)
    assert rotated.exit_code == 0, rotated.output
    monkeypatch.setenv("PULSELOOP_MASTER_KEY", old.hex())
    with pytest.raises(EncryptionKeyError, match=r"replaced it at .* restart this process"):
        asyncio.run(write())


async def test_a_rotation_in_flight_is_waited_for_not_raced(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL, many processes: a data key made while a rotation's transaction holds
    the check row waits for it, then sees the new key and inserts nothing (a plain read
    of the check would see the old value and insert under the old key)."""
    monkeypatch.setenv("PULSELOOP_MASTER_KEY", MASTER_KEY)
    url = pg_server.create_database()
    conninfo = parse_url(url).conninfo
    try:
        async with opened(url) as stale:
            assert isinstance(stale, EncryptedStore)
            new = check_value(MasterKey(secrets.token_bytes(32), "the new key"))
            rotation = await psycopg.AsyncConnection.connect(conninfo)
            monitor = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
            try:
                async with rotation.transaction():  # a rotation, not yet committed
                    await rotation.execute(
                        "UPDATE master_key_check SET kcv = %s, rotated_at = %s WHERE id = 1",
                        (new, time.time()),
                    )
                    task = asyncio.create_task(stale.keyring.rotate("clinic-new"))
                    while not task.done() and not await _waits_on_a_lock(monitor):
                        await asyncio.sleep(0.01)
                with pytest.raises(EncryptionKeyError, match="replaced it at"):
                    await task
            finally:
                await rotation.close()
                await monitor.close()
            assert await _wrapped_rows(stale) == []
    finally:
        pg_server.drop_database(url)


async def _waits_on_a_lock(monitor: psycopg.AsyncConnection[Any]) -> bool:
    cur = await monitor.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    row = await cur.fetchone()
    return row is not None and int(row[0]) > 0
