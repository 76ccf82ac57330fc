"""``pulseloop orgs``, ``keys`` and the read commands over HTTP (``--url``/``--key``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulseloop import App
from pulseloop.server.app import create_app
from pulseloop.server.serve import free_port, serving
from tests.cli.helpers import invoke, invoke_json


def make_key(db: Path, org: str) -> str:
    """``orgs create`` + ``keys create``; the key alone on stdout."""
    invoke("orgs", "create", org, "--db", str(db))
    result = invoke("keys", "create", "--org", org, "--db", str(db))
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("pl_") and len(key) > 40
    return key


def test_orgs_and_keys(db: Path) -> None:
    assert invoke("orgs", "create", "clinic-a", "--db", str(db)).exit_code == 0
    again = invoke("orgs", "create", "clinic-a", "--db", str(db))
    assert again.exit_code == 1 and "exists already" in again.stderr
    bad = invoke("orgs", "create", "Bad Name!", "--db", str(db))
    assert bad.exit_code == 2 and bad.stderr.startswith("error:")
    assert invoke_json("orgs", "list", "--db", str(db))[0]["name"] == "clinic-a"
    result = invoke("keys", "create", "--org", "clinic-a", "--db", str(db))
    key = result.stdout.strip()
    keys = invoke_json("keys", "list", "--org", "clinic-a", "--db", str(db))
    assert [k["revoked_at"] for k in keys] == [None] and key.split("_")[1] == keys[0]["id"]
    assert key not in db.read_bytes().decode("latin-1")  # only the hash is stored
    revoked = invoke("keys", "revoke", key, "--db", str(db))  # the key itself works too
    assert revoked.exit_code == 0 and key not in revoked.output
    assert invoke_json("keys", "list", "--org", "clinic-a", "--db", str(db))[0]["revoked_at"]
    missing = invoke("keys", "create", "--org", "nope", "--db", str(db))
    assert missing.exit_code == 1 and "pulseloop orgs create nope" in missing.stderr
    unknown = invoke("keys", "revoke", "000000000000", "--db", str(db))
    assert unknown.exit_code == 1


@pytest.fixture
def server(db: Path) -> Iterator[str]:
    """``create_app`` served on loopback from a thread (the CLI calls it synchronously)."""
    url: list[str] = []
    ready, stop = threading.Event(), threading.Event()

    async def main() -> None:
        async with App(database_url=f"sqlite:///{db}", worker=False, org="clinic-a") as pulse:
            await pulse.trigger("greet", {"name": "ada"}, id="run-1")
            async with serving(create_app(pulse), port=free_port(), log_level="warning") as u:
                url.append(u)
                ready.set()
                while not stop.is_set():
                    await asyncio.sleep(0.01)

    thread = threading.Thread(target=asyncio.run, args=(main(),))
    make_key(db, "clinic-a")  # creates the database first
    thread.start()
    assert ready.wait(30)
    yield url[0]
    stop.set()
    thread.join(30)


def test_runs_over_http_match_the_database(
    db: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSELOOP_ORG", "clinic-a")  # --db reads act as the server's org
    key = make_key(db, "clinic-b")  # another org: sees nothing
    key_a = invoke("keys", "create", "--org", "clinic-a", "--db", str(db)).stdout.strip()
    remote = invoke_json("runs", "list", "--url", server, "--key", key_a)
    assert [r["id"] for r in remote] == ["run-1"]
    local = invoke_json("runs", "show", "run-1", "--db", str(db))
    assert invoke_json("runs", "show", "run-1", "--url", server, "--key", key_a) != {}
    shown = invoke_json("runs", "show", "run-1", "--url", server, "--key", key_a)
    assert {k: shown[k] for k in ("id", "loop", "status", "body")} == {
        k: local[k] for k in ("id", "loop", "status", "body")
    }
    table = invoke("runs", "list", "--url", server, "--key", key_a)
    assert table.exit_code == 0 and "run-1" in table.stdout
    assert invoke_json("runs", "list", "--url", server, "--key", key) == []
    hidden = invoke("runs", "show", "run-1", "--url", server, "--key", key)
    assert hidden.exit_code == 1 and "no run 'run-1'" in hidden.stderr
    scan = invoke("scans", "show", "scan_x", "--url", server, "--key", key_a)
    assert scan.exit_code == 1 and "no scan" in scan.stderr


def test_url_errors_are_one_line(db: Path, server: str) -> None:
    no_key = invoke("runs", "list", "--url", server)
    assert no_key.exit_code == 2 and "--key" in no_key.stderr
    bad_key = invoke("runs", "list", "--url", server, "--key", "pl_nope_nope")
    assert bad_key.exit_code == 2 and "not valid" in bad_key.stderr
    assert "pl_nope_nope" not in bad_key.output
    unreachable = invoke("runs", "list", "--url", f"http://127.0.0.1:{free_port()}", "--key", "k")
    assert unreachable.exit_code == 2 and "cannot reach" in unreachable.stderr
