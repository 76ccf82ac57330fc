"""Re-encrypting older rows in the background: plaintext rows from before encryption, and
rows sealed under a data key that is no longer its organization's current one.

A pass walks every payload column once in primary-key order, ``batch`` rows per
transaction, and rewrites a row only if it still holds what was read (compare-and-set):
a writer that changed it meanwhile wins, and two workers passing at once do no harm.

A pass is O(history), so a worker runs one only when one is due (:func:`due_orgs`,
migration 0013): an organization whose current key is newer than its first and not yet
marked ``resealed_at`` (a rotation), or any database whose ``reseal_due`` row says it may
hold rows no pass has looked at (an upgrade). A completed pass marks each current key it
covered, but only a key current for ``settle_s`` (``2 * REFRESH_S``) before the pass
began, since other processes may seal with the older key until they refresh; until then
the worker passes again. A worker start on a fully sealed database reads the keys and
``reseal_due`` and walks no row.

Design record. Considered: a pass per start that stops at the first column holding only
current keys (still O(column) on a sealed database); a per-row "sealed under" column
(a write per row, and an index, on the hot path). Marking keys costs one row per
rotation and makes the start check O(keys).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pulseloop.background import Background
from pulseloop.store.base import SCAN_SIGNAL_PAYLOAD
from pulseloop.store.sealed.columns import COLUMNS, PayloadColumn, stored_error, token_of
from pulseloop.store.sealed.keyring import REFRESH_S, Statement, key_id_of, seal, unseal
from pulseloop.store.sealed.store import EncryptedStore

log = logging.getLogger(__name__)

BATCH = 200
CHECK_S = 60.0
SETTLE_S = 2 * REFRESH_S
MARKED_KEYS = "SELECT id FROM data_keys WHERE resealed_at IS NOT NULL"
DUE_REASONS = "SELECT reason FROM reseal_due"
MARK_KEY = "UPDATE data_keys SET resealed_at = ? WHERE id = ? AND resealed_at IS NULL"
CLEAR_DUE = "DELETE FROM reseal_due"
EXPIRED_ERRORS = (
    "SELECT org, org, id, run_key, error FROM runs WHERE run_key = ? AND error IS NOT NULL "
    "AND purged_at IS NULL"
)


async def reseal_column(
    store: EncryptedStore, column: PayloadColumn, after: tuple[Any, ...], batch: int = BATCH
) -> tuple[tuple[Any, ...] | None, int]:
    """Re-encrypt one batch of ``column`` after cursor ``after``; return the next cursor
    (None when the column is done) and how many rows changed."""
    width = len(column.start)
    (rows,) = await store.payload_sql([(column.select, (*after, batch))])
    updates = await _resealed(store, column, rows)
    if updates:
        await store.payload_sql(updates)
    done = len(rows) < batch
    return (None if done else tuple(rows[-1][1 : 1 + width])), len(updates)


async def _resealed(
    store: EncryptedStore, column: PayloadColumn, rows: list[tuple[Any, ...]]
) -> list[Statement]:
    """The compare-and-set updates sealing ``rows`` (as ``column.select`` returns them)
    under their organization's current key; rows already under it need none."""
    width = len(column.start)
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
    return updates


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


async def seal_expired(store: EncryptedStore, run_keys: list[str]) -> int:
    """Seal the errors :meth:`~pulseloop.store.base.Store.expire_deadlines` wrote as plain
    text (one statement fails many runs with the engine's fixed timeout text) right away,
    so no pass is needed for them; how many rows were sealed."""
    if not run_keys:
        return 0
    column = next(c for c in COLUMNS if c.name == "runs.error")
    found = await store.payload_sql([(EXPIRED_ERRORS, (key,)) for key in run_keys])
    updates = await _resealed(store, column, [row for rows in found for row in rows])
    if updates:
        await store.payload_sql(updates)
    return len(updates)


async def due_orgs(store: EncryptedStore) -> set[str] | None:
    """The organizations whose rows a pass must look at; None: every row (an upgrade)."""
    keyring = store.keyring
    await keyring.load()
    marked, reasons = await store.payload_sql([(MARKED_KEYS, ()), (DUE_REASONS, ())])
    if reasons:
        return None
    done = {str(row[0]) for row in marked}
    firsts: dict[str, str] = {}
    for key in keyring.keys():  # noqa: SIM118 (a list of keys, oldest first)
        firsts.setdefault(key.org, key.id)
    return {
        org
        for org, key_id in keyring.current_ids().items()
        if key_id != firsts[org] and key_id not in done
    }


async def mark_resealed(store: EncryptedStore, started: float, settle_s: float) -> None:
    """After a pass that began at ``started`` (wall time) completed: mark each current key
    made at least ``settle_s`` before it, and clear ``reseal_due``."""
    keyring = store.keyring
    await keyring.load()
    current = set(keyring.current_ids().values())
    marks: list[Statement] = [
        (MARK_KEY, (started, key.id))
        for key in keyring.keys()  # noqa: SIM118 (a list, not a dict)
        if key.id in current and key.created_at + settle_s <= started
    ]
    await store.payload_sql([*marks, (CLEAR_DUE, ())])


class Resealer(Background):
    """The background task a worker process runs (see the module doc)."""

    task_name = "pulseloop-resealer"

    def __init__(
        self,
        store: EncryptedStore,
        *,
        batch: int = BATCH,
        check_s: float = CHECK_S,
        settle_s: float = SETTLE_S,
    ):
        super().__init__()  # idle: set whenever nothing is due, or a pass found nothing
        self.store = store
        self.batch = batch
        self.check_s = check_s
        self.settle_s = settle_s
        self.passes = 0
        """Passes finished (tests wait on :attr:`idle`, not on time)."""

    async def _loop(self) -> None:
        while True:
            busy = True
            try:
                busy = await self._step()
            except Exception:  # keep serving; the next check retries
                log.exception("re-encrypting older rows failed; retrying")
            await self._pause(min(self.check_s, REFRESH_S) if busy else self.check_s)

    async def _step(self) -> bool:
        """Pass if one is due; True while more passes may be needed."""
        if await due_orgs(self.store) == set():
            self.idle.set()
            return False
        started = time.time()
        changed = await reseal_all(self.store, self.batch)
        self.passes += 1
        if changed:
            log.info("re-encrypted %d rows under the current data keys", changed)
        await mark_resealed(self.store, started, self.settle_s)
        more = await due_orgs(self.store) != set()
        if changed == 0 or not more:
            self.idle.set()
        return more
