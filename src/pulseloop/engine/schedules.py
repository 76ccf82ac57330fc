"""Schedules as the worker sees them: declared ones synced at start, due ones fired.

Firing is part of the worker's one store call per timer pass
(:meth:`~pulseloop.store.protocols.TimerPass.timer_pass`): the store claims the due rows
and applies :func:`planner`'s plan to each in the transaction that inserts the tick's
run, so any number of workers fire each tick once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from pulseloop.engine import tracing
from pulseloop.engine.codec import encode
from pulseloop.engine.cron import Cron, check_range, next_tick, plan, to_epoch
from pulseloop.engine.loop import Loop
from pulseloop.store.base import Firing, ScheduleRecord, ScheduleStore

FIRE_BATCH = 500
"""Due schedules fired per transaction; a pass with more due simply runs again at once."""


def new_record(
    org: str,
    schedule_id: str,
    loop: str,
    *,
    cron: str,
    tz: str,
    body_json: str,
    missed: str,
    start_at: float | None,
    end_at: float | None,
    source: str,
    now: float,
) -> ScheduleRecord:
    """A schedule row as first stored: due at its first tick after ``now``."""
    check_range(start_at, end_at)
    return ScheduleRecord(
        org=org, id=schedule_id, loop=loop, cron=cron, tz=tz, body=body_json, missed=missed,
        start_at=start_at, end_at=end_at, paused=False,
        next_fire_at=next_tick(cron, tz, now, start_at, end_at), last_fire_at=None,
        last_run_id=None, source=source, created_at=now, updated_at=now,
    )  # fmt: skip


def declared(cls: type[Loop]) -> list[Cron]:
    """The schedules a loop class declares (``schedules = [Cron(...)]``)."""
    found = list(getattr(cls, "schedules", ()) or ())
    for item in found:
        if not isinstance(item, Cron):
            raise TypeError(f"{cls.__name__}.schedules holds {item!r}; list Cron(...) items")
    return found


async def sync_declared(
    store: ScheduleStore, org: str, loops: Mapping[str, type[Loop]], now: float
) -> None:
    """Store the schedules the loops declare and drop those their code no longer lists."""
    for name, cls in loops.items():
        crons = declared(cls)
        for item in crons:
            body = encode(item.body, f"the body of schedule {item.id!r}")
            record = new_record(
                org, item.id, name, cron=item.cron, tz=item.tz, body_json=body,
                missed=item.missed, start_at=to_epoch(item.start, item.tz, "start"),
                end_at=to_epoch(item.end, item.tz, "end"), source="code", now=now,
            )  # fmt: skip
            await store.put_schedule(record)
        await store.delete_code_schedules(org, name, [item.id for item in crons])


def planner(
    org: str, now: float, run_timeouts: Mapping[str, float] | None = None
) -> Callable[[ScheduleRecord], Firing]:
    """The ``plan`` the store applies to each schedule of ``org`` due at ``now`` (in the
    timer pass's transaction). ``run_timeouts`` (loop name -> seconds) gives the tick runs
    of those loops a deadline."""
    limits = run_timeouts or {}

    def planned(record: ScheduleRecord) -> Firing:
        firing = plan(record, now, limits.get(record.loop))
        if tracing.ENABLED and firing.run_id is not None and firing.tick_at is not None:
            # the tick's run gets a trace of its own, rooted in a trigger span
            parent = tracing.trigger_parent(org, firing.run_id, record.loop)
            firing = dataclasses.replace(firing, trace_parent=parent)
        return firing

    return planned
