"""``pulseloop webhooks add|list|remove|deliveries`` on a database."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pulseloop import App
from tests.cli.helpers import invoke, invoke_json


def _make(db: Path) -> None:
    async def make() -> None:
        async with App(database_url=f"sqlite:///{db}", worker=False):
            pass

    asyncio.run(make())


def test_add_list_remove(db: Path) -> None:
    _make(db)
    added = invoke("webhooks", "add", "https://ehr.example/hooks", "--event", "run.failed",
                   "--db", str(db))  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "run.failed" in added.stdout and "whsec_" in added.stdout  # the secret, once
    created = invoke_json("webhooks", "add", "https://b.example/x", "--db", str(db))
    assert created["secret"].startswith("whsec_") and len(created["events"]) == 6
    listed = invoke_json("webhooks", "list", "--db", str(db))
    assert [e["url"] for e in listed] == ["https://ehr.example/hooks", "https://b.example/x"]
    assert {e["secret"] for e in listed} == {None}
    table = invoke("webhooks", "list", "--db", str(db))
    assert "ehr.example" in table.stdout and "whsec_" not in table.stdout
    assert invoke("webhooks", "remove", created["id"], "--db", str(db)).exit_code == 0
    assert [e["id"] for e in invoke_json("webhooks", "list", "--db", str(db))] != [created["id"]]
    missing = invoke("webhooks", "remove", created["id"], "--db", str(db))
    assert missing.exit_code == 1 and created["id"] in missing.output
    refused = invoke("webhooks", "add", "file:///etc/passwd", "--db", str(db))
    assert refused.exit_code != 0 and "http" in refused.output
    assert invoke_json("webhooks", "deliveries", "--db", str(db)) == []
