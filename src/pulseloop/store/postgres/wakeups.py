"""Wake-up hints across processes: LISTEN/NOTIFY, never trusted for correctness.

A trigger, an event or a scan outcome committed by one process makes work ready for
workers in others; polling finds it within a poll interval, and a NOTIFY lets them look
at once. Rules, each from a failure seen in other engines:

* **A hint only.** Notifications are lost across reconnects and dropped by PgBouncer in
  transaction mode; every worker still polls, and the poll alone is correct.
* **Off the write path.** A commit that sends NOTIFY takes a cluster-wide lock, so
  notifying commits serialize. Hints are sent after the commit, from a pooled connection,
  coalesced: one ``pg_notify`` per organization per ``COALESCE_S`` however many writes.
* **One listening connection per store** (an App opens one store per process), re-made
  after a reconnect; on reconnect every subscriber is woken, since hints may have been
  missed meanwhile. At start the listener checks that its own notification arrives, and
  logs a warning if not (e.g. behind PgBouncer): set ``listen=off`` in the URL then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from pulseloop.store.postgres import errors

log = logging.getLogger(__name__)

CHANNEL = "pulseloop_work"
ALL_ORGS = "*"
COALESCE_S = 0.01
SELF_CHECK_S = 2.0
_BACKOFF_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)

Connect = Callable[[], Awaitable[psycopg.AsyncConnection[Any]]]
Borrow = Callable[[Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]], Awaitable[None]]


class Notifier:
    """Coalesces hints and sends them after the commits that caused them."""

    def __init__(self, send: Borrow) -> None:
        self._send = send
        self._pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def hint(self, org: str) -> None:
        """Work may be ready for ``org`` (or every org: ``ALL_ORGS``); send soon."""
        self._pending.add(org)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(COALESCE_S)
        orgs, self._pending = sorted(self._pending), set()

        async def send(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(
                "SELECT pg_notify(%s, o) FROM unnest(%s::text[]) AS o", (CHANNEL, orgs)
            )

        try:
            await self._send(send)
        except Exception as exc:  # a lost hint costs one poll interval, nothing more
            log.debug("wake-up hint not sent: %s", exc)

    async def close(self) -> None:
        """Send what is pending, then stop."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None


class Listener:
    """One LISTEN connection; calls the subscribers of the organization named."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._subscribers: dict[str, list[Callable[[], None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.healthy = False
        """True while listening, and the start-up self-check saw its own notification."""

    def subscribe(self, org: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` when work may be ready for ``org``."""
        self._subscribers.setdefault(org, []).append(callback)

    def unsubscribe(self, org: str, callback: Callable[[], None]) -> None:
        """Stop calling ``callback``."""
        with contextlib.suppress(KeyError, ValueError):
            self._subscribers[org].remove(callback)

    async def start(self) -> None:
        """Start listening in the background (failures only delay hints)."""
        self._task = asyncio.create_task(self._serve(), name="pulseloop-pg-listen")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    def _wake(self, org: str) -> None:
        targets = (
            [cb for cbs in self._subscribers.values() for cb in cbs]
            if org == ALL_ORGS
            else list(self._subscribers.get(org, ()))
        )
        for callback in targets:
            callback()

    async def _serve(self) -> None:
        attempt = 0
        first = True
        while True:
            try:
                self._conn = await self._connect()
                await self._conn.execute(f"LISTEN {CHANNEL}")
                probe = f"probe-{uuid.uuid4().hex}"
                await self._conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, probe))
                if not first:
                    self._wake(ALL_ORGS)  # hints may have been lost while disconnected
                first, attempt = False, 0
                await self._receive(probe)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.healthy = False
                if not errors.is_disconnect(exc, self._conn):
                    log.warning("LISTEN failed: %s", exc)
                await self._close()
                await asyncio.sleep(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])
                attempt += 1

    async def _receive(self, probe: str) -> None:
        assert self._conn is not None
        checker = asyncio.get_running_loop().call_later(SELF_CHECK_S, self._self_check_failed)
        try:
            async for note in self._conn.notifies():
                if note.payload == probe:
                    checker.cancel()
                    self.healthy = True
                elif not note.payload.startswith("probe-"):
                    self._wake(note.payload)
        finally:
            checker.cancel()

    def _self_check_failed(self) -> None:
        log.warning(
            "LISTEN/NOTIFY does not deliver on this connection (PgBouncer in transaction "
            "mode?); workers fall back to polling. Add listen=off to the database URL to "
            "turn listening off."
        )

    async def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
