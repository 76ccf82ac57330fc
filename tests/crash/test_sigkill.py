"""Crash safety: SIGKILL a real worker process at random instants, restart it each time.

At the end the run has the right output, every step is recorded exactly once, and no
step's side effect ran more than twice. Kills are spaced so the worker makes progress
between them (two new side effects since the restart); otherwise killing the same step
three times would legitimately run it three times (steps run at least once).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pulseloop import App
from tests.crash.crash_loop import STEPS

LOOP_FILE = Path(__file__).with_name("crash_loop.py")
KILLS = 20


def start_worker(loop_file: Path, db_url: str) -> subprocess.Popen[str]:
    """A real worker process serving ``loop_file``, once it says it is ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pulseloop.cli.main", "worker", str(loop_file), "--db", db_url,
         "--lease", "1 second", "--poll", "50 milliseconds"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "ready" in line, f"worker did not start: {line!r}"
    return proc


def stop_worker(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    """Signal the worker by its pid and reap it."""
    os.kill(proc.pid, sig)
    proc.wait(timeout=60)
    assert proc.stdout is not None
    proc.stdout.close()


def _effects(log: Path) -> list[int]:
    if not log.exists():
        return []
    return [int(x) for x in log.read_text().split()]


async def _trigger(db_url: str, log: Path) -> str:
    async with App([], db_url, worker=False) as app:
        run = await app.trigger("crash-loop", {"log": str(log)}, id="crash-run")
        return run.id


async def _status(db_url: str, run_id: str) -> str:
    async with App([], db_url, worker=False) as app:
        return (await app.get_run(run_id)).status


@pytest.mark.crash
def test_sigkill_at_random_instants_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'crash.db'}"
    log = tmp_path / "effects.log"
    run_id = asyncio.run(_trigger(db_url, log))
    rng = random.Random(20261125)
    kills = 0
    while kills < KILLS:
        proc = start_worker(LOOP_FILE, db_url)
        base = len(_effects(log))
        while len(_effects(log)) < base + 2 and proc.poll() is None:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.03))  # a random instant: mid-step, mid-commit, ...
        stop_worker(proc, signal.SIGKILL)
        kills += 1
        assert len(set(_effects(log))) < STEPS, "the run finished before all kills happened"

    proc = start_worker(LOOP_FILE, db_url)
    try:
        for _ in range(3000):
            if asyncio.run(_status(db_url, run_id)) == "completed":
                break
            time.sleep(0.02)
    finally:
        stop_worker(proc, signal.SIGTERM)

    async def final() -> tuple[object, list[str]]:
        async with App([], db_url, worker=False) as app:
            run = await app.get_run(run_id)
            return run.output, [s.name for s in run.steps if s.status == "completed"]

    output, recorded = asyncio.run(final())
    assert kills >= KILLS
    assert output == sum(range(STEPS))
    assert recorded == [f"step {i:03d}" for i in range(STEPS)]  # each exactly once, in order
    counts = Counter(_effects(log))
    assert set(counts) == set(range(STEPS))
    assert max(counts.values()) <= 2, {k: v for k, v in counts.items() if v > 2}
    redone = sum(v == 2 for v in counts.values())
    assert redone <= KILLS  # at most one redo per kill
    assert redone >= 1  # kills did land mid-step: the crash window was exercised
