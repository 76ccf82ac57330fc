"""Worker liveness locks: a live worker is never taken for dead, a killed one always is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from pulseloop.store.sqlite.liveness import WorkerLocks

_HOLDER = """
import sys, time
from pulseloop.store.sqlite.liveness import WorkerLocks
locks = WorkerLocks(sys.argv[1])
locks.hold(sys.argv[2])
print("held", flush=True)
time.sleep(600)
"""


def test_live_workers_are_alive_and_killed_ones_dead(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    mine, other = WorkerLocks(db), WorkerLocks(db)
    mine.hold("w-live")
    assert other.dead() == []  # another worker in this same process is alive

    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, db, "w-doomed"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    assert other.dead() == []  # alive in its own process
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    holder.stdout.close()

    assert other.dead() == ["w-doomed"]
    assert other.dead() == []  # found once: its file is gone
    mine.release("w-live")
    assert sorted(p.name for p in Path(db + "-workers").iterdir()) == []


def test_in_memory_databases_have_no_locks() -> None:
    locks = WorkerLocks(":memory:")
    locks.hold("w")
    assert locks.dead() == []
    locks.release("w")
