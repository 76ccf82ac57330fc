"""Sealing and opening records without awaiting: the encrypting store's hot path.

Design record. Measured over a backend that does nothing (the store's own Python, no
SQL), the first :class:`~pulseloop.store.sealed.store.EncryptedStore` cost ~4.5 us per
step recorded and ~5.7 us per step read back, against ~0.4 us of AES-GCM per payload and
no AES at all on a read it had just written (:class:`~pulseloop.store.sealed.keyring.Recent`).
The rest was Python around it: a coroutine to look the data key up and another to "learn"
keys before every record opened, and every record rebuilt even when nothing in it was
sealed. Here each record is opened by plain function calls; a payload whose key this
process has not fetched yet raises :class:`Unlearnt`, and the caller fetches that key and
opens the records again (rare: another process rotated a key a moment ago). Sealing
likewise takes the key the caller already holds.

Considered: moving sealing into each backend's row builders (no wrapper call at all).
The wrapper's own dispatch measured ~1 us per step of the ~4.5; the rest went away here
without writing the sealing twice, once per backend.
"""

from __future__ import annotations

import json
from binascii import b2a_base64
from collections.abc import Callable
from typing import Any

from pulseloop.errors import EncryptionKeyError
from pulseloop.store.base import RunRecord, StepRecord
from pulseloop.store.sealed.columns import ERROR_KEY, SEALED_PREFIX
from pulseloop.store.sealed.keyring import (
    DataKey,
    Keyring,
    Recent,
    _nonces,
    check_owner,
    key_id_of,
    seal,
    unseal,
)


class Unlearnt(Exception):
    """A stored payload names a data key this process has not fetched yet."""

    def __init__(self, key_id: str) -> None:
        super().__init__(key_id)
        self.key_id = key_id


class Codec:
    """Seals payloads with a key in hand and opens records whose keys are known."""

    __slots__ = ("_known", "_recent")

    def __init__(self, recent: Recent) -> None:
        self._known: Callable[[str], DataKey | None] = _not_open
        self._recent = recent

    def use(self, keyring: Keyring) -> None:
        """Open payloads with ``keyring``'s keys (once the store is open)."""
        self._known = keyring.known

    def seal(self, key: DataKey, text: str, column: str, *row: str) -> str:
        """``text`` sealed for ``column`` of ``row`` (remembered, so reading it back costs
        no AES-GCM)."""
        token = seal(key, text, column, *row)
        self._recent.put(token, column, (*row, key.org), text)
        return token

    def seal_error(
        self, key: DataKey, error: dict[str, Any] | None, column: str, *row: str
    ) -> dict[str, Any] | None:
        """An error column's dict sealed as ``{"sealed": token}``."""
        if error is None:
            return None
        return {ERROR_KEY: self.seal(key, json.dumps(error), column, *row)}

    def seal_step(self, key: DataKey, s: StepRecord) -> StepRecord:
        """The step record as stored: its output and error sealed (once per step: calls
        inlined)."""
        output, error, run_key, name = s.output, s.error, s.run_id, s.name
        if output is not None:
            # keyring.seal inlined (same token, same associated data; a test holds them
            # equal): this runs once per step, and each call level cost more than AES
            nonce = _nonces.next()
            aad = f"steps.output\x1f{key.org}\x1f{run_key}\x1f{name}".encode()
            body = b2a_base64(nonce + key.aead.encrypt(nonce, output.encode(), aad), newline=False)
            text, output = output, f"{SEALED_PREFIX}{key.id}.{body.decode()}"
            self._recent.put(output, "steps.output", (run_key, name, key.org), text)
        if error is not None:
            error = self.seal_error(key, error, "steps.error", run_key, name)
        return StepRecord(
            s.run_id, s.name, s.seq, s.kind, s.status, output, error, s.attempts,
            s.started_at, s.finished_at, s.version,
        )  # fmt: skip

    def open(
        self, stored: str | None, column: str, row: tuple[str, ...], org: str | None
    ) -> str | None:
        """``stored`` opened; a plaintext row from before encryption comes back as it is.
        Raises :class:`Unlearnt` when its key has not been fetched yet."""
        if stored is None or not stored.startswith(SEALED_PREFIX):
            return stored
        # remembered with the key's organization beside the row: a hit is this very
        # ciphertext, column, row and organization, so it needs no owner check either
        if org is not None:
            text = self._recent.get(stored, column, (*row, org))
            if text is not None:
                return text
        key_id = key_id_of(stored)
        key = self._known(key_id)
        if key is None:
            raise Unlearnt(key_id)
        check_owner(key, org, column, *row)
        owned = (*row, key.org)
        text = self._recent.get(stored, column, owned)
        if text is None:
            text = unseal(key, stored, column, *row)
            self._recent.put(stored, column, owned, text)
        return text

    def open_error(
        self, error: dict[str, Any] | None, column: str, row: tuple[str, ...], org: str | None
    ) -> dict[str, Any] | None:
        """An error column's dict opened (a plaintext dict comes back as it is)."""
        if not is_sealed_error(error):
            return error
        assert error is not None
        text = self.open(str(error[ERROR_KEY]), column, row, org)
        return None if text is None else dict(json.loads(text))

    def step(self, s: StepRecord, org: str | None = None) -> StepRecord:
        """The step record, fresh from the backend, opened in place (see :func:`_opened`)."""
        output, error = s.output, s.error
        if (output is None or not output.startswith(SEALED_PREFIX)) and not is_sealed_error(error):
            return s
        row = (s.run_id, s.name)
        output = self.open(output, "steps.output", row, org)
        error = self.open_error(error, "steps.error", row, org)
        _opened(s, output=output, error=error)
        return s

    def run(self, r: RunRecord) -> RunRecord:
        """The run record, fresh from the backend, opened in place (see :func:`_opened`)."""
        by_key, org = (r.key,), r.org
        opened = {
            "input": self.open(r.input, "runs.input", (r.id,), org) or "",
            "output": self.open(r.output, "runs.output", by_key, org),
            "error": self.open_error(r.error, "runs.error", by_key, org),
            "summary": self.open(r.summary, "runs.summary", by_key, org),
        }  # every value opened before any is set: an Unlearnt key leaves the record as read
        _opened(r, **opened)
        return r


def _opened(record: RunRecord | StepRecord, **values: Any) -> None:
    """Set a record's payload fields to their plaintext, in place.

    Only for a record the backend has just built from its row for this call (so nobody
    else holds it): constructing a frozen 19-field record again cost more than opening
    its payloads (~2 us of a run poll's ~4). Never for a record the engine handed in:
    :meth:`Codec.seal_step` builds a new one, since the engine keeps its own."""
    for name, value in values.items():
        object.__setattr__(record, name, value)


def _not_open(key_id: str) -> DataKey | None:
    raise EncryptionKeyError("the store is not open; open it before reading payloads")


def is_sealed_error(error: dict[str, Any] | None) -> bool:
    """Whether an error column's dict holds a ciphertext (``{"sealed": token}``)."""
    return error is not None and len(error) == 1 and ERROR_KEY in error
