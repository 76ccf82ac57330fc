"""Rotating the master key: every data key re-wrapped under a new master key.

The payloads never change (they are sealed with the data keys, which stay the same);
only the ``data_keys`` table's ``wrapped`` column does, in one transaction, each row
compare-and-set against what was read, and the same transaction records the new key's
check value (:mod:`pulseloop.store.sealed.master_check`). Afterwards the old master key
opens nothing: a process started with it fails at open, and one still running with it
refuses to wrap or open any data key it does not hold yet ("restart it with the new
key"). A data key another process added just before (under the old master key) is
re-wrapped by a second round; the rotation ends only when every key opens with the new
master key.
"""

from __future__ import annotations

import time

from pulseloop.errors import EncryptionKeyError
from pulseloop.store.sealed.columns import LIST_DATA_KEYS
from pulseloop.store.sealed.keyring import Statement
from pulseloop.store.sealed.master import MasterKey
from pulseloop.store.sealed.master_check import READ_CHECK, ROTATE_CHECK, MasterCheck, check_value
from pulseloop.store.sealed.store import EncryptedStore

REWRAP = "UPDATE data_keys SET wrapped = ? WHERE id = ? AND wrapped = ?"
ROUNDS = 5


async def rewrap_data_keys(store: EncryptedStore, new: MasterKey) -> int:
    """Re-wrap every data key of ``store`` (opened with the current master key) under
    ``new``; how many keys. EncryptionKeyError if ``new`` is the current key."""
    old = store.keyring.master
    if new.secret == old.secret:
        raise EncryptionKeyError(
            f"the new master key ({new.source}) is the current one ({old.source}); "
            "generate a new one"
        )
    total = 0
    # the first round's transaction replaces the check value, even with no key to re-wrap
    switch: list[Statement] = [(ROTATE_CHECK, (check_value(new), time.time(), check_value(old)))]
    for _ in range(ROUNDS):
        (rows,) = await store.payload_sql([(LIST_DATA_KEYS, ())])
        updates: list[Statement] = []
        for key_id, org, wrapped, _created in rows:
            if _opens(new, org, key_id, wrapped):
                continue  # done in an earlier round
            secret = old.unwrap(org, key_id, wrapped)
            updates.append((REWRAP, (new.wrap(org, key_id, secret), key_id, wrapped)))
        if not updates and not switch:
            return total
        *_, check_rows = await store.payload_sql([*switch, *updates, (READ_CHECK, ())])
        check = MasterCheck.of(check_rows)
        if check is None or not check.matches(new):
            raise EncryptionKeyError(
                "another master key rotation ran at the same time and won; run "
                "`pulseloop keys rotate-master-key` again with the key it installed as "
                "the current one, once it is done"
            )
        switch = []
        total += len(updates)
    raise EncryptionKeyError(
        f"data keys kept changing during {ROUNDS} rounds of re-wrapping; run the rotation "
        "again when no `rotate-data-key` runs"
    )


def _opens(key: MasterKey, org: str, key_id: str, wrapped: str) -> bool:
    try:
        key.unwrap(org, key_id, wrapped)
    except EncryptionKeyError:
        return False
    return True
