"""A worker SIGKILLed after starting a child run and before recording anything of it in
the parent: after recovery the parent finds the same child (exactly one), on both
backends."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from pulseloop import App
from pulseloop.errors import RunNotFound
from tests.crash.test_sigkill import start_worker, stop_worker

LOOP_FILE = Path(__file__).with_name("child_crash_loop.py")


async def _trigger(db_url: str, marker: Path) -> None:
    async with App([], db_url, worker=False) as app:
        await app.trigger("starts-child", {"marker": str(marker)}, id="parent")


async def _child_exists(db_url: str) -> bool:
    async with App([], db_url, worker=False) as app:
        try:
            await app.get_run("parent~child")
        except RunNotFound:
            return False
        return True


async def _parent_step(db_url: str) -> bool:
    async with App([], db_url, worker=False) as app:
        steps = (await app.get_run("parent")).steps
        return any(s.name == "child" and s.status != "waiting" for s in steps)


async def _final(db_url: str) -> tuple[str, object, list[str]]:
    async with App([], db_url, worker=False) as app:
        parent = await app.get_run("parent")
        family = await app.store.run_family(app.org, "parent")
        doublers = await app.list_runs(loop="doubler")
    assert family is not None
    return (
        parent.status,
        parent.output,
        [r.id for r in doublers] + [c.id for c in family.descendants],
    )


@pytest.mark.crash
def test_a_kill_between_starting_a_child_and_recording_it_leaves_one_child(
    db_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "holding"
    asyncio.run(_trigger(db_url, marker))
    proc = start_worker(LOOP_FILE, db_url)
    try:
        for _ in range(3000):
            if marker.exists() and asyncio.run(_child_exists(db_url)):
                break
            time.sleep(0.01)
        assert marker.exists(), "the parent never reached its held step"
        assert not asyncio.run(_parent_step(db_url))  # nothing of the child recorded yet
    finally:
        stop_worker(proc, signal.SIGKILL)

    proc = start_worker(LOOP_FILE, db_url)
    try:
        status = ""
        for _ in range(3000):
            status, output, ids = asyncio.run(_final(db_url))
            if status == "completed":
                break
            time.sleep(0.02)
    finally:
        stop_worker(proc, signal.SIGTERM)
    assert status == "completed"
    assert output == {"child": 42, "held": "held once"}
    assert ids == ["parent~child", "parent~child"]  # one doubler run, and it is the child
