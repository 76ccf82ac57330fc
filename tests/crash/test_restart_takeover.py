"""A restarted worker resumes its killed predecessor's run at once, not when the lease ends.

Before: SIGKILL ``pulseloop worker`` mid-run and start it again, and the run's next step
came 29 s later (the dead worker's lease had to expire). Now a worker proves its
predecessor dead (its liveness lock is free) and takes the run as it starts. The test runs
real worker processes with their default lease and checks that the run moved on while the
dead worker's lease still had time to run: the takeover was by proof, not by expiry.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.crash.test_sigkill import LOOP_FILE, _effects, _trigger, stop_worker


def _start_worker(db_url: str, *options: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pulseloop.cli.main", "worker", str(LOOP_FILE), "--db", db_url,
         *options],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "ready" in line, f"worker did not start: {line!r}"
    return proc


def _wait_for_effects(log: Path, count: int, proc: subprocess.Popen[str]) -> None:
    while len(_effects(log)) < count:
        assert proc.poll() is None, "the worker exited"
        time.sleep(0.005)


def _lease_expiry(db: Path, run_id: str) -> float:
    conn = sqlite3.connect(db)
    try:
        (expires,) = conn.execute(
            "SELECT lease_expires_at FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
    finally:
        conn.close()
    assert expires is not None, "the killed worker held the run"
    return float(expires)


@pytest.mark.crash
def test_a_restarted_worker_takes_over_before_the_dead_lease_expires(tmp_path: Path) -> None:
    db = tmp_path / "takeover.db"
    db_url = f"sqlite:///{db}"
    log = tmp_path / "effects.log"
    run_id = asyncio.run(_trigger(db_url, log))

    first = _start_worker(db_url)  # the default lease
    _wait_for_effects(log, 3, first)
    stop_worker(first, signal.SIGKILL)
    dead_lease_ends = _lease_expiry(db, run_id)
    done_before = len(set(_effects(log)))

    # a long lease for the successor: its heartbeat (every third of it) cannot be what
    # finds the dead worker in time; only the search it makes as it starts can
    second = _start_worker(db_url, "--lease", "60 seconds")
    try:
        _wait_for_effects(log, len(_effects(log)) + 2, second)
        resumed_at = time.time()
    finally:
        stop_worker(second, signal.SIGTERM)

    assert len(set(_effects(log))) > done_before
    assert resumed_at < dead_lease_ends, (
        f"resumed {resumed_at - dead_lease_ends:.1f} s after the dead worker's lease ended: "
        "the takeover waited for the lease"
    )
    assert not list((tmp_path / "takeover.db-workers").glob("*.lock")), "lock files left"
