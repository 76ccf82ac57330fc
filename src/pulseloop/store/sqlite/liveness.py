"""Proof that a worker process is dead, so its runs move at once instead of after a lease.

Design record. A worker killed with ``kill -9`` leaves its runs ``running`` under a lease
nobody renews; waiting the lease out cost 29 s per restart. Time is a poor witness (a
paused VM or a long GC looks like death); the kernel is a good one: every worker holds an
exclusive ``flock`` on a file of its own in ``<database>-workers/`` for as long as its
process lives, and the kernel drops that lock the instant the process dies, however it
dies. Any worker that can take another's lock has proven that process gone; it queues the
dead worker's runs again and deletes the file. Considered: a liveness row with a heartbeat
(that is a lease again, with the same wait); the pid in a file (pids are reused, and a
pid says nothing across containers sharing a volume).

A lock file appears under its final name only once locked (created under a temporary
name, locked, then renamed), so no scan can see a live worker's file unlocked. Locks are
per open file description: two workers in one process still see each other as alive.
Only SQLite uses this (its workers share one machine); a vanished *machine* is what the
lease is left for.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

SUFFIX = ".lock"


class WorkerLocks:
    """This process's liveness locks, and the search for dead workers' ones."""

    def __init__(self, database_path: str) -> None:
        self.folder = None if database_path == ":memory:" else Path(database_path + "-workers")
        self._held: dict[str, int] = {}

    def hold(self, worker: str) -> None:
        """Lock ``worker``'s file for as long as this process lives (or until released)."""
        if self.folder is None:
            return
        self.folder.mkdir(mode=0o700, exist_ok=True)
        temporary = self.folder / f".{worker}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.replace(temporary, self.folder / f"{worker}{SUFFIX}")
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        self._held[worker] = fd

    def release(self, worker: str) -> None:
        """A worker that stopped: delete its file, then unlock it."""
        fd = self._held.pop(worker, None)
        if fd is None or self.folder is None:
            return
        with contextlib.suppress(OSError):
            (self.folder / f"{worker}{SUFFIX}").unlink()
        os.close(fd)

    def dead(self) -> list[str]:
        """Workers whose process is gone: their lock could be taken. Their files are
        deleted (while locked, so a second searcher finds nothing to take)."""
        if self.folder is None or not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.glob(f"*{SUFFIX}"):
            worker = path.name[: -len(SUFFIX)]
            if worker in self._held:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue  # another searcher took it first
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # alive
            try:
                if os.path.exists(path) and os.path.samestat(os.fstat(fd), os.stat(path)):
                    path.unlink()
                    found.append(worker)
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
        return found
