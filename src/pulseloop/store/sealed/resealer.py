"""Re-encrypting older rows in the background: plaintext rows from before encryption, and
rows sealed under a data key that is no longer its organization's current one.

A pass walks every payload column once in primary-key order, ``batch`` rows per
transaction, and rewrites a row only if it still holds what was read (compare-and-set):
a writer that changed it meanwhile wins, and two workers passing at once do no harm.
Workers run a pass when they start and again whenever a data key rotation shows up; they
keep passing until a pass finds nothing to do at least ``2 * REFRESH_S`` after the
rotation was seen, since other processes may seal with the old key until they refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from pulseloop.store.base import SCAN_SIGNAL_PAYLOAD
from pulseloop.store.sealed.columns import COLUMNS, PayloadColumn, stored_error, token_of
from pulseloop.store.sealed.keyring import REFRESH_S, Statement, key_id_of, seal, unseal
from pulseloop.store.sealed.store import EncryptedStore

log = logging.getLogger(__name__)

BATCH = 200
CHECK_S = 60.0


async def reseal_column(
    store: EncryptedStore, column: PayloadColumn, after: tuple[Any, ...], batch: int = BATCH
) -> tuple[tuple[Any, ...] | None, int]:
    """Re-encrypt one batch of ``column`` after cursor ``after``; return the next cursor
    (None when the column is done) and how many rows changed."""
    width = len(column.start)
    (rows,) = await store.payload_sql([(column.select, (*after, batch))])
    updates: list[Statement] = []
    for row in rows:
        org, value, cursor = str(row[0]), row[-1], tuple(row[1 : 1 + width])
        if value == SCAN_SIGNAL_PAYLOAD:
            continue  # names a scan, holds nothing
        ident = column.row(tuple(row[:-1]))
        current = await store.keyring.current(org)
        token = token_of(value, column.is_error)
        if token is None:
            plain = str(value)  # written before encryption
        elif key_id_of(token) == current.id:
            continue
        else:
            old = await store.keyring.by_id(key_id_of(token))
            plain = unseal(old, token, column.name, *ident, org=org)
        sealed = seal(current, plain, column.name, *ident)
        new = stored_error(sealed) if column.is_error else sealed
        updates.append((column.update, (new, *cursor, value)))
    if updates:
        await store.payload_sql(updates)
    done = len(rows) < batch
    return (None if done else tuple(rows[-1][1 : 1 + width])), len(updates)


async def reseal_all(store: EncryptedStore, batch: int = BATCH) -> int:
    """One full pass over every payload column; how many rows were re-encrypted."""
    changed = 0
    for column in COLUMNS:
        cursor: tuple[Any, ...] | None = column.start
        while cursor is not None:
            cursor, n = await reseal_column(store, column, cursor, batch)
            changed += n
            await asyncio.sleep(0)  # one batch at a time: let the engine's work through
    return changed


class Resealer:
    """The background task a worker process runs (see the module doc)."""

    def __init__(self, store: EncryptedStore, *, batch: int = BATCH, check_s: float = CHECK_S):
        self.store = store
        self.batch = batch
        self.check_s = check_s
        self.passes = 0
        """Passes finished (tests wait on :attr:`idle`, not on time)."""
        self.idle = asyncio.Event()
        """Set whenever a pass finds nothing left to do."""
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        """Start passing in the background."""
        self._task = asyncio.create_task(self._loop(), name="pulseloop-resealer")

    def kick(self) -> None:
        """Pass again now (after a rotation in this process)."""
        self.idle.clear()
        self._wake.set()

    async def stop(self) -> None:
        """Stop between batches."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        seen = self.store.keyring.current_ids()
        busy_until = time.monotonic() + 2 * REFRESH_S
        while True:
            try:
                changed = await reseal_all(self.store, self.batch)
            except Exception:  # keep serving; the next pass retries
                log.exception("re-encrypting older rows failed; retrying")
                changed = -1
            self.passes += 1
            if changed > 0:
                log.info("re-encrypted %d rows under the current data keys", changed)
            if changed == 0:
                self.idle.set()
            while True:  # until there may be something to do
                busy = changed != 0 or time.monotonic() < busy_until
                kicked = await self._pause(min(self.check_s, REFRESH_S) if busy else self.check_s)
                await self.store.keyring.load()
                ids = self.store.keyring.current_ids()
                if kicked or ids != seen:
                    seen = ids
                    busy_until = time.monotonic() + 2 * REFRESH_S
                    break
                if busy:
                    break

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` or until kicked; True if kicked."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        kicked = self._wake.is_set()
        self._wake.clear()
        return kicked
