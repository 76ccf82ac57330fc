"""Per-organization data keys: created on first use, unwrapped once, cached in memory.

A ciphertext reads ``plx1.<data key id>.<base64(nonce || AES-GCM ciphertext)>``:
naming its key is what lets a rotation leave old rows readable. An organization's
current key is its newest. Another process's rotation is seen within ``REFRESH_S``
(what it sealed meanwhile under the older key stays readable and is re-encrypted by the
background pass); a key id this process never saw is fetched at once.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pulseloop.errors import EncryptionKeyError
from pulseloop.store.sealed.columns import (
    LIST_DATA_KEYS,
    SEALED_PREFIX,
    aad,
)
from pulseloop.store.sealed.master import KEY_BYTES, MasterKey
from pulseloop.store.sealed.master_check import (
    ADD_DATA_KEY_CHECKED,
    FIRST_CHECK,
    LOCK_CHECK,
    READ_CHECK,
    MasterCheck,
    check_value,
    not_current,
)

log = logging.getLogger(__name__)

REFRESH_S = 30.0
_NONCE_BYTES = 12

Statement = tuple[str, tuple[Any, ...]]


class PayloadSql(Protocol):
    """What a backend runs for the encryption layer: its SQL, written once with ``?``
    placeholders (:mod:`pulseloop.store.sealed.columns`), in one transaction."""

    async def payload_sql(self, statements: Sequence[Statement]) -> list[list[tuple[Any, ...]]]:
        """Run ``statements`` in order in one transaction; each one's rows (or [])."""


@dataclass(frozen=True, slots=True)
class DataKey:
    """An unwrapped data key of one organization."""

    id: str
    org: str
    aead: AESGCM
    created_at: float
    secret: bytes = field(default=b"", repr=False)
    """The raw key, for the one reader in another process: a sealed upload's decoder
    (:class:`~pulseloop.store.sealed.reader.SealedVideo`). Never in a repr or a log."""


class Keyring:
    """The data keys of every organization, unwrapped by one master key."""

    def __init__(self, master: MasterKey, sql: PayloadSql) -> None:
        self.master = master
        self._sql = sql
        self._by_id: dict[str, DataKey] = {}
        self._current: dict[str, DataKey] = {}
        self._loaded_at = -REFRESH_S
        self._loaded = False
        self._warned = False
        self._check = check_value(master)
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read and unwrap every data key (EncryptionKeyError on a wrong master key, or
        one a rotation replaced: :mod:`pulseloop.store.sealed.master_check`)."""
        rows, check_rows = await self._sql.payload_sql([(LIST_DATA_KEYS, ()), (READ_CHECK, ())])
        check = MasterCheck.of(check_rows)
        if check is not None and check.rotated_at is not None and not check.matches(self.master):
            unknown = [row for row in rows if row[0] not in self._by_id]
            if unknown or not self._loaded:
                raise not_current(self.master, check)
            if not self._warned:  # the keys it holds did not change: it may go on reading
                self._warned = True
                log.warning("%s", not_current(self.master, check))
        for key_id, org, wrapped, created_at in rows:
            key = self._by_id.get(key_id)
            if key is None:
                secret = self.master.unwrap(org, key_id, wrapped)
                key = DataKey(key_id, org, AESGCM(secret), created_at, secret)
                self._by_id[key_id] = key
            self._current[org] = key  # rows come oldest first: the last one wins
        if check is None:  # first open (or from before migration 0019): every key opened
            (_, check_rows) = await self._sql.payload_sql(
                [(FIRST_CHECK, (self._check, time.time())), (READ_CHECK, ())]
            )
            check = MasterCheck.of(check_rows)
        if check is None or (not check.matches(self.master) and not self._loaded):
            raise not_current(self.master, check)
        self._loaded = True
        self._loaded_at = time.monotonic()

    def cached(self, org: str) -> DataKey | None:
        """The current key of ``org`` without a database read, or None when the cache is
        older than ``REFRESH_S`` or has none (then await :meth:`current`)."""
        if time.monotonic() - self._loaded_at > REFRESH_S:
            return None
        return self._current.get(org)

    def known(self, key_id: str) -> DataKey | None:
        """A key already unwrapped, or None (then await :meth:`by_id`)."""
        return self._by_id.get(key_id)

    async def current(self, org: str) -> DataKey:
        """The key new payloads of ``org`` are sealed with (made on first use)."""
        async with self._lock:  # many first writes at once make one key, not one each
            if time.monotonic() - self._loaded_at > REFRESH_S:
                await self.load()
            key = self._current.get(org)
            if key is None:
                await self.load()  # another process may have made it
                key = self._current.get(org) or await self.rotate(org)
            return key

    async def rotate(self, org: str) -> DataKey:
        """Make a new data key current for ``org``; older keys stay for reading."""
        key_id = secrets.token_hex(8)
        secret = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        now = time.time()
        newest = self._current.get(org)
        if newest is not None and now <= newest.created_at:
            now = newest.created_at + 1e-3  # strictly newest, whatever the clock did
        wrapped = self.master.wrap(org, key_id, secret)
        *_, check_rows = await self._sql.payload_sql(  # one transaction: the check row first
            [
                (LOCK_CHECK, (self._check,)),
                (ADD_DATA_KEY_CHECKED, (key_id, org, wrapped, now, self._check)),
                (READ_CHECK, ()),
            ]
        )
        check = MasterCheck.of(check_rows)
        if check is None or not check.matches(self.master):
            raise not_current(self.master, check)  # and nothing was inserted
        key = self._by_id[key_id] = DataKey(key_id, org, AESGCM(secret), now, secret)
        self._current[org] = key
        return key

    async def by_id(self, key_id: str) -> DataKey:
        """A key named by a ciphertext (fetched if another process made it)."""
        key = self._by_id.get(key_id)
        if key is None:
            await self.load()
            key = self._by_id.get(key_id)
            if key is None:
                raise EncryptionKeyError(
                    f"a payload names data key {key_id!r}, which this database does not "
                    "hold: restore the data_keys table from the same backup as the rows"
                )
        return key

    def keys(self) -> list[DataKey]:
        """Every key loaded, oldest first."""
        return sorted(self._by_id.values(), key=lambda k: (k.created_at, k.id))

    def current_ids(self) -> dict[str, str]:
        """org -> current key id, as last loaded."""
        return {org: key.id for org, key in self._current.items()}


class _Nonces:
    """Random 96-bit nonces, drawn from the OS in bulk.

    One ``os.urandom`` per payload cost more than its syscall: it releases the GIL, and
    the SQLite writer thread, waiting for work, took it each time and began a commit with
    the few step records queued so far. Group commits in bench (b) shrank from ~50 steps
    to ~20. Drawing 4,096 nonces at a time keeps them just as random and unique (each
    slice is used once; a forked child starts a fresh pool, never its parent's).
    """

    _BATCH = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pool, self._at = b"", 0

    def next(self) -> bytes:
        with self._lock:
            if self._at + _NONCE_BYTES > len(self._pool):
                self._pool, self._at = os.urandom(_NONCE_BYTES * self._BATCH), 0
            nonce = self._pool[self._at : self._at + _NONCE_BYTES]
            self._at += _NONCE_BYTES
            return nonce


_nonces = _Nonces()


def seal(key: DataKey, text: str, column: str, *row: str) -> str:
    """``text`` sealed with ``key``, bound to ``column`` of the row named by ``row``."""
    nonce = _nonces.next()
    sealed = key.aead.encrypt(nonce, text.encode(), aad(column, key.org, *row))
    body = binascii.b2a_base64(nonce + sealed, newline=False).decode()
    return f"{SEALED_PREFIX}{key.id}.{body}"


def key_id_of(token: str) -> str:
    """The data key id a ciphertext names."""
    key_id, dot, _ = token[len(SEALED_PREFIX) :].partition(".")
    if not dot or not key_id:
        raise EncryptionKeyError(
            f"a payload starts like a ciphertext but is not one: {token[:24]!r}...; "
            "restore the row from backup"
        )
    return key_id


def unseal(key: DataKey, token: str, column: str, *row: str, org: str | None = None) -> str:
    """The plaintext of ``token`` (sealed by :func:`seal` with the same column and row).

    ``org``, when the reader knows the row's organization, must own the key: a payload
    moved across organizations fails even before AES-GCM would refuse it.
    """
    check_owner(key, org, column, *row)
    try:
        raw = binascii.a2b_base64(token[len(SEALED_PREFIX) + len(key.id) + 1 :])
        plain = key.aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad(column, key.org, *row))
    except (InvalidTag, binascii.Error, ValueError):
        raise EncryptionKeyError(
            f"the payload in {column} of {'/'.join(row)} does not open with its data key "
            f"{key.id!r}: it was altered or copied from another row (each ciphertext is "
            "bound to its row and column); restore the row from backup"
        ) from None
    return plain.decode()


def check_owner(key: DataKey, org: str | None, column: str, *row: str) -> None:
    """Refuse a payload of organization ``org`` (when known) sealed with another's key."""
    if org is not None and key.org != org:
        raise EncryptionKeyError(
            f"the payload in {column} of {'/'.join(row)} of organization {org!r} is sealed "
            "with a key of another organization: it was copied from elsewhere; restore the "
            "row from backup"
        )


class Recent:
    """Plaintexts this process sealed or opened lately, so reading back what it just wrote
    (a run's steps at its end, a run polled until it finishes) costs no AES-GCM call.

    Keyed by (ciphertext, column, row): a ciphertext names its key (so its organization,
    which :func:`check_owner` still checks on every read) and carries a random nonce, so
    an entry answers only for the very row it was sealed or opened for; a ciphertext
    copied elsewhere misses and fails to open. Small payloads only, few of them: patient
    data stays in memory no longer than the engine itself would keep it around.
    """

    MAX_ENTRIES = 4096
    MAX_CHARS = 2048

    def __init__(self) -> None:
        # OrderedDict: dropping the oldest is O(1) (a plain dict's next(iter()) walks the
        # holes its deletions leave at the front)
        self._texts: OrderedDict[tuple[str, ...], str] = OrderedDict()

    def get(self, token: str, column: str, row: tuple[str, ...]) -> str | None:
        """The plaintext, if recently seen for this row and column."""
        return self._texts.get((token, column, *row))

    def put(self, token: str, column: str, row: tuple[str, ...], text: str) -> None:
        """Remember a small plaintext (the oldest entry goes when full)."""
        if len(text) > self.MAX_CHARS:
            return
        texts = self._texts
        if len(texts) >= self.MAX_ENTRIES:
            texts.popitem(last=False)
        texts[(token, column, *row)] = text
