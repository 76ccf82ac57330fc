"""Proof that a worker process is gone, on PostgreSQL: a session advisory lock per worker.

Design record. The SQLite store proves death with a ``flock`` the kernel drops when the
process dies; workers on many machines need a witness they all see. PostgreSQL's session
advisory locks are that witness: each worker (and each scan analyser) holds
``pg_advisory_lock(hashtextextended('pulseloop-worker:' || id, 0))`` on a connection of
its own for as long as it lives, and the server releases the lock the moment that
session ends — a process killed with ``kill -9`` closes its socket, and the backend exits
at once. A worker that can take another's lock (``pg_try_advisory_lock``, released again
at once) has proven that session gone, and queues the dead worker's runs again without
waiting for their leases. A machine that vanishes without closing its TCP connection
keeps its session until the server notices (TCP keepalive): then the lease is what moves
its runs, as before.

The cost of a false "dead": after a PostgreSQL restart every session is new, and a worker
that has not re-taken its lock yet looks dead for a moment; its runs are then queued again
and its own next write for them fails its fence (``LeaseLost``), so the step runs again
elsewhere: at-least-once, as after any crash, never a lost or doubled record. Considered:
a heartbeat row (a lease by another name, with the same wait); ``pg_locks`` queries (they
need the lock key split into classid/objid and see only granted locks of this database,
which the try-lock sees too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[Any]
_KEY = "hashtextextended('pulseloop-worker:' || %s, 0)"


class AdvisoryLocks:
    """The workers of this store and their advisory locks, on one dedicated connection."""

    def __init__(self, connect: Callable[[], Awaitable[Conn]]) -> None:
        self._connect = connect
        self._conn: Conn | None = None
        self._held: set[str] = set()
        self._lock = asyncio.Lock()  # one statement at a time on the connection

    async def hold(self, worker: str) -> None:
        """Take ``worker``'s lock for as long as this store stays open."""
        async with self._lock:
            self._held.add(worker)
            conn = await self._connection()
            await conn.execute(f"SELECT pg_advisory_lock({_KEY})", (worker,))

    async def release(self, worker: str) -> None:
        """``worker`` stopped gracefully."""
        async with self._lock:
            self._held.discard(worker)
            if self._conn is not None and not self._conn.closed:
                with contextlib.suppress(psycopg.Error):
                    await self._conn.execute(f"SELECT pg_advisory_unlock({_KEY})", (worker,))

    async def dead(self, owners: list[str]) -> list[str]:
        """Which of ``owners`` (lease holders seen in the database) no session holds."""
        found: list[str] = []
        async with self._lock:
            conn = await self._connection()
            for owner in owners:
                if owner in self._held:
                    continue
                cur = await conn.execute(f"SELECT pg_try_advisory_lock({_KEY})", (owner,))
                row = await cur.fetchone()
                if row is not None and row[0]:
                    await conn.execute(f"SELECT pg_advisory_unlock({_KEY})", (owner,))
                    found.append(owner)
        return found

    async def close(self) -> None:
        """End the session: every lock it held is released by the server."""
        async with self._lock:
            self._held.clear()
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

    async def _connection(self) -> Conn:
        """The connection, made again (and every held lock re-taken) after it was lost."""
        if self._conn is not None and not self._conn.closed:
            try:
                await self._conn.execute("SELECT 1")
                return self._conn
            except psycopg.Error:
                log.warning("the worker-liveness connection was lost; reconnecting")
                with contextlib.suppress(psycopg.Error):
                    await self._conn.close()
        self._conn = await self._connect()
        for worker in sorted(self._held):
            await self._conn.execute(f"SELECT pg_advisory_lock({_KEY})", (worker,))
        return self._conn
