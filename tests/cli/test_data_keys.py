"""``pulseloop keys rotate-data-key``: a new current data key, older rows still readable."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from pulseloop.store import open_store
from pulseloop.store.sealed import EncryptedStore
from tests.cli.helpers import invoke


async def _current_key_and_input(db: Path, org: str) -> tuple[str, str]:
    store = open_store(f"sqlite:///{db}")
    await store.open()
    try:
        assert isinstance(store, EncryptedStore)
        run, _ = await store.create_run(org, "r1", "loop", json.dumps("+15550100"), 1.0)
        return (await store.keyring.current(org)).id, run.input  # a second call reads r1
    finally:
        await store.close()


def test_rotate_data_key(db: Path) -> None:
    assert invoke("orgs", "create", "clinic-a", "--db", str(db)).exit_code == 0
    before, text = asyncio.run(_current_key_and_input(db, "clinic-a"))
    result = invoke("keys", "rotate-data-key", "--org", "clinic-a", "--db", str(db))
    assert result.exit_code == 0, result.output
    after, again = asyncio.run(_current_key_and_input(db, "clinic-a"))
    assert after != before
    assert result.stdout.strip() == f"data key {after} is now current for clinic-a"
    assert json.loads(text) == json.loads(again) == "+15550100"  # the old row still opens

    everyone = invoke("keys", "rotate-data-key", "--db", str(db))
    assert everyone.exit_code == 0 and "now current for clinic-a" in everyone.stdout
    unknown = invoke("keys", "rotate-data-key", "--org", "nobody", "--db", str(db))
    assert unknown.exit_code == 1 and "no organization named 'nobody'" in unknown.stderr
