"""``FACIAL_SCAN.create`` is idempotent across a SIGKILL between create and checkpoint."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from pulseloop import App
from tests.crash.test_sigkill import start_worker, stop_worker

LOOP_FILE = Path(__file__).with_name("scan_crash_loop.py")


@pytest.mark.crash
def test_step_reexecuted_after_sigkill_gets_the_same_scan(tmp_path: Path) -> None:
    import signal

    db = tmp_path / "scan.db"
    db_url = f"sqlite:///{db}"
    out, block = tmp_path / "created.jsonl", tmp_path / "block"
    block.touch()

    async def trigger() -> str:
        async with App([], db_url, worker=False) as app:
            run = await app.trigger("provision-once", {"out": str(out), "block": str(block)})
            return run.id

    run_id = asyncio.run(trigger())
    proc = start_worker(LOOP_FILE, db_url)
    for _ in range(3000):
        if out.exists() and out.read_text().strip():
            break
        time.sleep(0.01)
    stop_worker(proc, signal.SIGKILL)  # created, but the step is not checkpointed
    block.unlink()

    proc = start_worker(LOOP_FILE, db_url)

    async def outcome() -> tuple[str, object]:
        async with App([], db_url, worker=False) as app:
            run = await app.get_run(run_id)
            return run.status, run.output

    try:
        for _ in range(3000):
            status, output = asyncio.run(outcome())
            if status == "completed":
                break
            time.sleep(0.01)
    finally:
        stop_worker(proc, signal.SIGTERM)

    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert status == "completed"
    assert first["id"] == second["id"]
    assert first["url"] == second["url"]  # the link a patient may already have still works
    assert output == first
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM scans").fetchone() == (1,)
