"""Recurring triggers at run time: ``app.schedules.create(loop, cron=..., tz=..., ...)``.

A schedule starts a run of its loop at every tick of a cron expression in a time zone,
exactly once per tick however many workers run (see ``engine/cron.py`` for the tick
rules, daylight saving and missed ticks). Schedules declared on a loop class
(``schedules = [Cron(...)]``) live in the same table, kept by the workers serving it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pulseloop.engine.codec import decode, encode
from pulseloop.engine.cron import (
    check_cron,
    check_missed,
    check_schedule_id,
    new_schedule_id,
    next_tick,
    to_epoch,
    upcoming,
    zone,
)
from pulseloop.engine.schedules import new_record
from pulseloop.errors import LoopNotFound, ScheduleNotFound
from pulseloop.store.base import ScheduleRecord, ScheduleStore

if TYPE_CHECKING:
    from pulseloop.client import OrgClient


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as operators see it; times are UTC ``datetime``\\ s."""

    id: str
    loop: str
    cron: str
    tz: str
    body: Any
    missed: str
    start: datetime | None
    end: datetime | None
    paused: bool
    next_fire: datetime | None
    """None while paused or once the end date has passed."""
    last_fire: datetime | None
    last_run_id: str | None
    source: str
    """``"code"`` (declared on the loop class) or ``"api"`` (created at run time)."""
    created_at: datetime
    upcoming: tuple[datetime, ...] = ()
    """The next few fire times (when asked for)."""


def build_schedule(record: ScheduleRecord, upcoming_count: int = 0) -> Schedule:
    """The public view of a stored schedule, with its next ``upcoming_count`` fire times."""
    times = tuple(datetime.fromtimestamp(t, UTC) for t in upcoming(record, upcoming_count))
    return Schedule(
        id=record.id, loop=record.loop, cron=record.cron, tz=record.tz,
        body=decode(record.body), missed=record.missed, start=_time(record.start_at),
        end=_time(record.end_at), paused=record.paused, next_fire=_time(record.next_fire_at),
        last_fire=_time(record.last_fire_at), last_run_id=record.last_run_id,
        source=record.source, created_at=datetime.fromtimestamp(record.created_at, UTC),
        upcoming=times,
    )  # fmt: skip


class Schedules:
    """``app.schedules`` (or ``client.schedules``): create, read, pause, resume and delete
    the schedules of the client's organization; every call is scoped by it."""

    def __init__(self, client: OrgClient) -> None:
        self._client = client

    @property
    def _store(self) -> ScheduleStore:
        return self._client.runtime.store

    async def create(
        self,
        loop: str,
        *,
        cron: str,
        tz: str = "UTC",
        body: Any = None,
        id: str | None = None,
        missed: str = "skip",
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        upcoming: int = 0,
    ) -> Schedule:
        """Start a run of ``loop`` with ``body`` at every tick of ``cron`` in ``tz``.

        An ``id`` that exists is replaced in place (its pause state and last fire kept),
        so creating a patient's schedule again is safe. ``missed``: ``"skip"`` or
        ``"catch_up_last"`` (ticks missed while no worker ran). ``start``/``end``: the
        first and last instants a tick may fall on (a time without zone is read in ``tz``).
        ``upcoming``: how many next fire times the answer lists.
        """
        client = self._client
        if loop not in client.loops and client.loops:
            known = ", ".join(sorted(client.loops))
            raise LoopNotFound(f"no loop named {loop!r} in this app; known loops: {known}")
        check_cron(cron)
        zone(tz)
        check_missed(missed)
        schedule_id = new_schedule_id() if id is None else check_schedule_id(id)
        text = encode(body, f"the body of schedule {schedule_id!r}")  # as run inputs are
        record = new_record(
            client.org, schedule_id, loop, cron=cron, tz=tz, body_json=text, missed=missed,
            start_at=to_epoch(start, tz, "start"), end_at=to_epoch(end, tz, "end"),
            source="api", now=client.clock.now(),
        )  # fmt: skip
        stored = await self._store.put_schedule(record)
        client.runtime.timers_changed()
        return build_schedule(stored, upcoming)

    async def get(self, schedule_id: str, *, upcoming: int = 0) -> Schedule:
        """The schedule, with its next ``upcoming`` fire times (ScheduleNotFound)."""
        return build_schedule(await self._record(schedule_id), upcoming)

    async def list(self, *, loop: str | None = None, upcoming: int = 0) -> list[Schedule]:
        """The organization's schedules, by id."""
        records = await self._store.list_schedules(self._client.org, loop=loop)
        return [build_schedule(r, upcoming) for r in records]

    async def pause(self, schedule_id: str, *, upcoming: int = 0) -> Schedule:
        """Stop firing until resumed (ticks while paused are not caught up)."""
        return await self._set_paused(schedule_id, True, upcoming)

    async def resume(self, schedule_id: str, *, upcoming: int = 0) -> Schedule:
        """Fire again from the first tick after now (with the next ``upcoming`` ones)."""
        return await self._set_paused(schedule_id, False, upcoming)

    async def delete(self, schedule_id: str) -> None:
        """Delete the schedule; runs it started are left alone. A schedule declared in
        code comes back when a worker serving its loop starts: remove it from the code."""
        if not await self._store.delete_schedule(self._client.org, schedule_id):
            raise self._not_found(schedule_id)

    async def _set_paused(self, schedule_id: str, paused: bool, upcoming: int) -> Schedule:
        client = self._client
        current = await self._record(schedule_id)
        now = client.clock.now()
        following = next_tick(current.cron, current.tz, now, current.start_at, current.end_at)
        record = await self._store.pause_schedule(client.org, schedule_id, paused, following, now)
        if record is None:
            raise self._not_found(schedule_id)
        client.runtime.timers_changed()
        return build_schedule(record, upcoming)

    async def _record(self, schedule_id: str) -> ScheduleRecord:
        record = await self._store.get_schedule(self._client.org, schedule_id)
        if record is None:
            raise self._not_found(schedule_id)
        return record

    @staticmethod
    def _not_found(schedule_id: str) -> ScheduleNotFound:
        return ScheduleNotFound(
            f"no schedule {schedule_id!r} in this organization; list them with "
            "`pulseloop schedules list`"
        )
