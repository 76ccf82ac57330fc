"""``pulseloop keys rotate-master-key`` on both backends: every data key re-wrapped under
the new master key in one go, payloads unchanged and readable with it, the old master key
refused with the clear "rotate-master-key replaced it" error."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import pytest

from pulseloop.errors import EncryptionKeyError
from pulseloop.store import open_store, sqlite_path
from pulseloop.store.sealed import EncryptedStore
from tests.cli.helpers import invoke

PHONE = "+1-555-0199-4321"


async def _write(url: str) -> dict[str, str]:
    """Two organizations' rows, one rotated once: org -> its current data key id."""
    store = open_store(url)
    await store.open()
    try:
        assert isinstance(store, EncryptedStore)
        for org in ("clinic-a", "clinic-b"):
            await store.create_run(org, "r1", "loop", json.dumps({"phone": PHONE}), 1.0)
        await store.rotate_data_key("clinic-a")
        await store.create_run("clinic-a", "r2", "loop", json.dumps({"phone": PHONE}), 2.0)
        return store.keyring.current_ids()
    finally:
        await store.close()


async def _read(url: str) -> dict[str, str]:
    store = open_store(url)
    await store.open()
    try:
        assert isinstance(store, EncryptedStore)
        for org, run_id in (("clinic-a", "r1"), ("clinic-a", "r2"), ("clinic-b", "r1")):
            run = await store.get_run(org, run_id)
            assert run is not None and json.loads(run.input) == {"phone": PHONE}
        return store.keyring.current_ids()
    finally:
        await store.close()


def test_rotating_the_master_key_rewraps_every_data_key(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = asyncio.run(_write(db_url))
    path = sqlite_path(db_url)
    old = (
        Path(path).with_suffix(".master-key").read_text()  # embedded: the file beside it
        if path is not None
        else "6d" * 32  # tests.pg.MASTER_KEY, from the environment
    )
    new = secrets.token_hex(32)
    new_file = tmp_path / "new.key"
    new_file.write_text(new)

    result = invoke("keys", "rotate-master-key", "--new-key-file", str(new_file), "--db", db_url)
    assert result.exit_code == 0, result.output
    assert "3 data keys re-wrapped under the new master key" in result.stdout

    if path is not None:  # the embedded key file now holds the new key
        assert Path(path).with_suffix(".master-key").read_text() == new
        assert asyncio.run(_read(db_url)) == keys
    monkeypatch.setenv("PULSELOOP_MASTER_KEY", new)
    assert asyncio.run(_read(db_url)) == keys  # same data keys, payloads untouched

    monkeypatch.setenv("PULSELOOP_MASTER_KEY", old)
    with pytest.raises(EncryptionKeyError, match=r"replaced it at .* restart this process"):
        asyncio.run(_read(db_url))

    again = invoke("keys", "rotate-master-key", "--new-key-file", str(new_file), "--db", db_url)
    assert again.exit_code == 2 and "is no longer this database's master key" in again.stderr


def test_the_new_key_must_be_given_and_differ(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(_write(db_url))
    monkeypatch.delenv("PULSELOOP_NEW_MASTER_KEY", raising=False)
    missing = invoke("keys", "rotate-master-key", "--db", db_url)
    assert missing.exit_code == 2 and "PULSELOOP_NEW_MASTER_KEY is not set" in missing.stderr
    current = "6d" * 32
    monkeypatch.setenv("PULSELOOP_MASTER_KEY", current)
    if sqlite_path(db_url) is not None:  # rows were sealed under the embedded key file's key
        return
    monkeypatch.setenv("PULSELOOP_NEW_MASTER_KEY", current)
    same = invoke("keys", "rotate-master-key", "--db", db_url)
    assert same.exit_code == 2 and "is the current one" in same.stderr
