"""Schedules through the encrypting store: a schedule's body is sealed like a run input,
and each tick's run gets the body resealed for its own row.

Design record. A body is the event body of every run its schedule starts, so it is
patient data (``{"patientId": ...}``) and sealed in ``schedules.body``, bound to the
schedule's id. The backends fire a due tick inside one transaction and copy the body into
the new run's ``input``; a copied ciphertext would not open there (it is bound to the
schedule's row, and run inputs to the run's id). Opening the body and sealing it again
for ``runs.input`` happens in the ``plan`` the backend calls inside that transaction
(``Firing.run_input``), so firing stays one transaction: decrypting first and inserting
later would have let two workers race for a tick outside the claim. ``plan`` is
synchronous (the SQLite backend calls it on its writer thread), so it cannot fetch a data
key; a body sealed under a key this process has not seen (another process rotated it a
moment ago) aborts the batch with :class:`_UnknownKey`, which rolls it back; the key is
fetched and the batch fired again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from pulseloop.errors import EncryptionKeyError
from pulseloop.store.base import Firing, ScheduleRecord, ScheduleStore, TimerPass
from pulseloop.store.sealed.columns import SEALED_PREFIX
from pulseloop.store.sealed.keyring import DataKey, Keyring, key_id_of, seal, unseal

BODY = "schedules.body"
_ATTEMPTS = 3
"""Batches fired at most per call when bodies name keys not seen yet (one per rotation
racing the call; a worker's next timer pass tries again)."""


_T = TypeVar("_T")


class _Backend(ScheduleStore, TimerPass, Protocol):
    """What this half needs of the wrapped backend."""


class _UnknownKey(Exception):
    """A due schedule's body names a data key this process has not fetched yet."""


class SealedSchedules:
    """The schedule half of :class:`~pulseloop.store.sealed.store.EncryptedStore`."""

    inner: _Backend  # provided by EncryptedStore: the wrapped backend

    @property
    def keyring(self) -> Keyring:  # provided by EncryptedStore
        raise NotImplementedError

    async def _seal(self, org: str, text: str, column: str, *row: str) -> str:
        raise NotImplementedError  # provided by EncryptedStore

    async def _key(self, org: str, column: str) -> DataKey:
        raise NotImplementedError  # provided by EncryptedStore

    async def _open(
        self, stored: str | None, column: str, *row: str, org: str | None = None
    ) -> str | None:
        raise NotImplementedError  # provided by EncryptedStore

    async def _schedule(self, record: ScheduleRecord | None) -> ScheduleRecord | None:
        if record is None:
            return None
        body = await self._open(record.body, BODY, record.id, org=record.org)
        return dataclasses.replace(record, body=body or "")

    async def put_schedule(self, record: ScheduleRecord) -> ScheduleRecord:
        """Store the schedule with its body sealed; return it opened."""
        sealed = await self._seal(record.org, record.body, BODY, record.id)
        stored = await self.inner.put_schedule(dataclasses.replace(record, body=sealed))
        opened = await self._schedule(stored)
        assert opened is not None
        return opened

    async def get_schedule(self, org: str, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, its body opened."""
        return await self._schedule(await self.inner.get_schedule(org, schedule_id))

    async def list_schedules(
        self, org: str, *, loop: str | None = None, limit: int = 200
    ) -> list[ScheduleRecord]:
        """The organization's schedules, their bodies opened."""
        records = await self.inner.list_schedules(org, loop=loop, limit=limit)
        return [r for r in [await self._schedule(r) for r in records] if r is not None]

    async def pause_schedule(
        self, org: str, schedule_id: str, paused: bool, next_fire_at: float | None, now: float
    ) -> ScheduleRecord | None:
        """Pause or resume; the record returned has its body opened."""
        return await self._schedule(
            await self.inner.pause_schedule(org, schedule_id, paused, next_fire_at, now)
        )

    async def delete_schedule(self, org: str, schedule_id: str) -> bool:
        """Delete it (nothing to seal)."""
        return await self.inner.delete_schedule(org, schedule_id)

    async def delete_code_schedules(self, org: str, loop: str, keep: list[str]) -> int:
        """Delete schedules the code no longer declares (nothing to seal)."""
        return await self.inner.delete_code_schedules(org, loop, keep)

    async def fire_schedules(
        self, org: str, now: float, plan: Callable[[ScheduleRecord], Firing], limit: int
    ) -> tuple[int, float | None]:
        """Fire the due ticks, each run's input the body resealed for that run."""
        return await self._firing(
            org, plan, lambda resealing: self.inner.fire_schedules(org, now, resealing, limit)
        )

    async def _firing(
        self,
        org: str,
        plan: Callable[[ScheduleRecord], Firing],
        fire: Callable[[Callable[[ScheduleRecord], Firing]], Awaitable[_T]],
    ) -> _T:
        """``fire(resealing plan)``, again after fetching the data keys of bodies sealed
        under keys this process had not seen (the failed attempt rolled back)."""
        for attempt in range(_ATTEMPTS):
            key = await self._key(org, "runs.input")
            missing: set[str] = set()
            try:
                return await fire(self._resealing(plan, org, key, missing))
            except _UnknownKey:
                if attempt == _ATTEMPTS - 1:
                    raise EncryptionKeyError(
                        f"schedules of {org!r} are sealed with data keys that keep changing "
                        f"({', '.join(sorted(missing))}); they fire on the next timer pass"
                    ) from None
                for key_id in missing:
                    await self.keyring.by_id(key_id)
        raise AssertionError("unreachable")

    def _resealing(
        self, plan: Callable[[ScheduleRecord], Firing], org: str, key: DataKey, missing: set[str]
    ) -> Callable[[ScheduleRecord], Firing]:
        """``plan`` given the schedule with its body opened, and each tick's run input
        sealed for that run: the input the plan gives (plaintext, as every input this
        layer takes), else the body."""
        keys = self.keyring

        def resealing(record: ScheduleRecord) -> Firing:
            body = record.body
            if body.startswith(SEALED_PREFIX):  # else plaintext from before encryption
                body_key = keys.known(key_id_of(body))
                if body_key is None:
                    missing.add(key_id_of(body))
                    raise _UnknownKey(key_id_of(body))
                body = unseal(body_key, body, BODY, record.id, org=org)
            firing = plan(dataclasses.replace(record, body=body))  # plans see plaintext
            if firing.run_id is None or firing.tick_at is None:
                return firing  # a skipped tick: no run, nothing to seal
            text = body if firing.run_input is None else firing.run_input
            return dataclasses.replace(
                firing, run_input=seal(key, text, "runs.input", firing.run_id)
            )

        return resealing
