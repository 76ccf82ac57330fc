"""Pool workers never outlive a parent that was killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

PARENT = """
import asyncio, os, sys
from pulseloop.vitals.pool import shared_pool

async def main() -> None:
    pool = shared_pool()
    pids = await asyncio.get_running_loop().run_in_executor(pool.executor(), os.getpid)
    print(pids, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone for our purposes
        return stat.read().split()[2] != "Z"


def test_workers_exit_when_their_parent_is_sigkilled() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker_pid = int(parent.stdout.readline())
    assert _alive(worker_pid)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    for _ in range(1000):
        if not _alive(worker_pid):
            break
        time.sleep(0.01)
    assert not _alive(worker_pid), f"pool worker {worker_pid} outlived its killed parent"
