"""Which master key wraps the data keys now, so a process holding an older one refuses
to wrap or open data keys with it.

The one-row ``master_key_check`` table (migration 0019) holds a key-check value of the
current master key: HMAC-SHA256 of a fixed label under the key (it identifies the key
and reveals nothing of it). The first process to open a database records its key's
value, once every data key opened with it (so databases from before 0019 get it at
their first open); ``pulseloop keys rotate-master-key`` replaces it in the transaction
that re-wraps the data keys (:mod:`pulseloop.store.sealed.rewrap`).

A process whose key does not match refuses to wrap a new data key and to open one it
has not opened yet, with an error that says to restart it with the new key; the data
keys it opened before the rotation stay usable (they did not change). The check and a
new data key's insert are one transaction that first locks the check row (an ``UPDATE``
on PostgreSQL): a rotation committing meanwhile is waited for and seen, so no data key
is ever stored wrapped under a replaced master key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pulseloop.errors import EncryptionKeyError
from pulseloop.store.sealed.master import MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, MasterKey

_LABEL = b"pulseloop master key check v1"

READ_CHECK = "SELECT kcv, set_at, rotated_at FROM master_key_check WHERE id = 1"
FIRST_CHECK = (
    "INSERT INTO master_key_check (id, kcv, set_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING"
)
LOCK_CHECK = "UPDATE master_key_check SET kcv = kcv WHERE id = 1 AND kcv = ?"
"""Takes the check row's lock (PostgreSQL): a rotation in flight is waited for."""
ADD_DATA_KEY_CHECKED = (
    "INSERT INTO data_keys (id, org, wrapped, created_at) SELECT ?, ?, ?, ? "
    "WHERE EXISTS (SELECT 1 FROM master_key_check WHERE id = 1 AND kcv = ?) "
    "ON CONFLICT (id) DO NOTHING"
)
ROTATE_CHECK = "UPDATE master_key_check SET kcv = ?, rotated_at = ? WHERE id = 1 AND kcv = ?"
"""Compare-and-set: a concurrent rotation to another key leaves this one's unchanged."""


def check_value(master: MasterKey) -> str:
    """The key-check value of ``master`` (hex)."""
    return hmac.new(master.secret, _LABEL, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class MasterCheck:
    """The ``master_key_check`` row."""

    kcv: str
    set_at: float
    rotated_at: float | None

    @classmethod
    def of(cls, rows: list[tuple[Any, ...]]) -> MasterCheck | None:
        """The row read by ``READ_CHECK``, or None before any process recorded one."""
        if not rows:
            return None
        kcv, set_at, rotated_at = rows[0]
        return cls(str(kcv), float(set_at), None if rotated_at is None else float(rotated_at))

    def matches(self, master: MasterKey) -> bool:
        """Whether ``master`` is the key this row names."""
        return hmac.compare_digest(self.kcv, check_value(master))


def not_current(master: MasterKey, check: MasterCheck | None) -> EncryptionKeyError:
    """The refusal of a process whose master key is not the database's current one."""
    restart = (
        f"restart this process with the current master key in {MASTER_KEY_ENV} (or "
        f"{MASTER_KEY_FILE_ENV}, or the database's key file)"
    )
    if check is None:
        return EncryptionKeyError(
            f"this database records no master key check (its master_key_check row was "
            f"deleted); pulseloop will not wrap or open data keys until it does: {restart}"
        )
    if check.rotated_at is not None:
        return EncryptionKeyError(
            f"the master key from {master.source} is no longer this database's master "
            f"key: `pulseloop keys rotate-master-key` replaced it at {_when(check.rotated_at)}. "
            f"This process will not wrap or open data keys with the old key: {restart}"
        )
    return EncryptionKeyError(
        f"the master key from {master.source} is not this database's master key (the one "
        f"its first process opened it with, at {_when(check.set_at)}); pulseloop will not "
        f"wrap or open data keys with another: {restart}"
    )


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
