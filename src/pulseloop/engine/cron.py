"""Cron expressions in a time zone: validation, tick times, and what a due schedule does.

Design record. The cron arithmetic is the ``cronsim`` library's (Debian cron semantics,
maintained, typed, no dependencies); nothing here parses an expression. ``croniter``
was the alternative: its maintainers stepped back from it in 2024 and it resumed under
new hands; cronsim's DST rules are documented and match the cron most people know:

* spring forward: a tick inside the skipped hour (02:30 in America/New_York on the
  second Sunday of March) fires once, at the first instant after the gap (03:00 EDT);
* fall back: a tick with a fixed hour inside the repeated hour (01:30) fires once, on
  its first occurrence (EDT); an expression with ``*`` in the hour field fires in both
  occurrences (01:00 EDT and 01:00 EST are two ticks an hour apart).

Ticks are instants (epoch seconds), so a tick's run id (``<schedule id>:<UTC time>``) is
the same whichever worker computes it, and inserting that run is idempotent: a tick
fired twice starts one run.

Missed ticks. A due schedule fires only its latest due tick; earlier ones that piled up
while every worker was down are dropped. ``missed="catch_up_last"`` fires that latest
tick however late; ``missed="skip"`` fires it only if it is at most
:data:`MISFIRE_GRACE_S` late (a worker a little behind still fires), so after an outage
the schedule simply resumes at its next tick. Considered and rejected: replaying every
missed tick (a week's outage of a 5-minute schedule would start 2,000 follow-ups at
once), and a per-schedule grace setting (one more knob nobody asked for yet).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from pulseloop.errors import InvalidSchedule
from pulseloop.store.base import Firing, ScheduleRecord

MISSED_POLICIES = ("skip", "catch_up_last")
MISFIRE_GRACE_S = 60.0
"""How late a tick may fire under ``missed="skip"``; later, it counts as missed."""
MAX_SCHEDULE_ID_CHARS = 150
"""Shorter than a run id (200), so ``<schedule id>:<tick>`` is a valid run id."""
_SCHEDULE_ID = re.compile(rf"[A-Za-z0-9._~-]{{1,{MAX_SCHEDULE_ID_CHARS}}}")
_TICK_STAMP = "%Y%m%dT%H%M%SZ"


def check_cron(expression: object) -> str:
    """``expression`` if cronsim reads it, else :class:`InvalidSchedule` naming it."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidSchedule(
            f"cron expression {expression!r} is not a string of 5 fields; write e.g. "
            "'0 8 * * *' (08:00 every day)",
            "cron",
        )
    try:
        CronSim(expression, datetime.now(UTC))
    except (CronSimError, ValueError) as exc:
        raise InvalidSchedule(
            f"cron expression {expression!r} is not valid ({exc}); write 5 fields, minute "
            "hour day-of-month month day-of-week, e.g. '30 2 * * *'",
            "cron",
        ) from None
    return expression


def zone(tz: object) -> ZoneInfo:
    """The IANA time zone ``tz`` names, else :class:`InvalidSchedule` naming it."""
    if isinstance(tz, str) and tz:
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise InvalidSchedule(
        f"time zone {tz!r} is unknown; use an IANA name such as 'UTC', 'Europe/Paris' "
        "or 'America/New_York'",
        "tz",
    )


def check_missed(missed: object) -> str:
    """``missed`` if it is a policy this runtime knows."""
    if missed not in MISSED_POLICIES:
        raise InvalidSchedule(
            f"missed-tick policy {missed!r} is unknown; use one of {', '.join(MISSED_POLICIES)}",
            "missed",
        )
    return str(missed)


def check_schedule_id(schedule_id: object) -> str:
    """``schedule_id`` if it may name a schedule: 1-150 of ``A-Za-z0-9._~-``, not only dots."""
    valid = isinstance(schedule_id, str) and _SCHEDULE_ID.fullmatch(schedule_id)
    if valid and isinstance(schedule_id, str) and schedule_id.strip("."):
        return schedule_id
    raise InvalidSchedule(
        f"schedule id {str(schedule_id)[:60]!r} is not allowed: use 1 to "
        f"{MAX_SCHEDULE_ID_CHARS} characters from A-Z a-z 0-9 . _ ~ - (not only dots)",
        "id",
    )


def new_schedule_id() -> str:
    """A fresh schedule id."""
    return f"sch-{uuid.uuid4().hex[:16]}"


def to_epoch(value: datetime | str | None, tz: str, field: str) -> float | None:
    """A start or end date as epoch seconds; a time without a zone is read in ``tz``
    (the schedule's zone: "from 1 December, clinic time")."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidSchedule(
                f"{field} {value!r} is not a time; use ISO 8601, e.g. 2026-12-01T08:00", field
            ) from None
    if not isinstance(value, datetime):
        raise InvalidSchedule(f"{field} {value!r} is not a datetime or ISO 8601 text", field)
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(tz))
    return value.timestamp()


def tick_run_id(schedule_id: str, tick_at: float) -> str:
    """The run id of one tick: the same on every worker, so its insert is idempotent."""
    return f"{schedule_id}:{datetime.fromtimestamp(tick_at, UTC).strftime(_TICK_STAMP)}"


def next_tick(
    cron: str, tz: str, after: float, start_at: float | None = None, end_at: float | None = None
) -> float | None:
    """The first tick strictly after ``after`` and at or after ``start_at``; None if it
    would fall after ``end_at``."""
    base = after if start_at is None else max(after, start_at - 1.0)
    ticks = CronSim(cron, datetime.fromtimestamp(base, zone(tz)))
    tick = next(ticks).timestamp()
    while start_at is not None and tick < start_at:  # a start within a minute's second
        tick = next(ticks).timestamp()
    return None if end_at is not None and tick > end_at else tick


def last_tick(cron: str, tz: str, at_or_before: float) -> float:
    """The latest tick at or before ``at_or_before``."""
    # cronsim's reverse walk yields ticks strictly before its datetime: start a
    # microsecond later so a tick exactly at ``at_or_before`` counts
    moment = datetime.fromtimestamp(at_or_before, zone(tz)) + timedelta(microseconds=1)
    ticks = CronSim(cron, moment, reverse=True)
    tick = next(ticks).timestamp()
    while tick > at_or_before:  # float rounding at the microsecond
        tick = next(ticks).timestamp()
    return tick


def upcoming(record: ScheduleRecord, count: int) -> list[float]:
    """The schedule's next ``count`` fire times (fewer if it ends; none if paused)."""
    times: list[float] = []
    at = record.next_fire_at
    while at is not None and len(times) < count:
        times.append(at)
        at = next_tick(record.cron, record.tz, at, record.start_at, record.end_at)
    return times


def plan(record: ScheduleRecord, now: float, run_timeout_s: float | None = None) -> Firing:
    """What the due schedule ``record`` does at ``now``: fire its latest due tick (or
    drop it, see the module doc) and move on to the first tick after ``now``. The tick's
    run gets a deadline ``run_timeout_s`` after the tick, if given."""
    due = record.next_fire_at
    assert due is not None and due <= now
    limit = now if record.end_at is None else min(now, record.end_at)
    # jump near the end of a long outage, then walk forward: cronsim's reverse walk does
    # not see the repeated hour of a fall-back day, its forward walk does
    latest = max(due, last_tick(record.cron, record.tz, limit))
    following = next_tick(record.cron, record.tz, latest, record.start_at, record.end_at)
    while following is not None and following <= limit:
        latest = following
        following = next_tick(record.cron, record.tz, latest, record.start_at, record.end_at)
    fire = record.missed == "catch_up_last" or now - latest <= MISFIRE_GRACE_S
    if not fire:
        return Firing(None, None, following)
    deadline = None if run_timeout_s is None else latest + run_timeout_s
    return Firing(latest, tick_run_id(record.id, latest), following, deadline)


@dataclass(frozen=True, slots=True)
class Cron:
    """A schedule declared on a :class:`~pulseloop.Loop` (``schedules = [Cron(...)]``).

    Workers serving the loop create it at start (or update its definition in place,
    keeping a pause an operator set), and delete declared schedules the code no longer
    lists. ``body`` is the event body of every tick's run.
    """

    cron: str
    id: str
    tz: str = "UTC"
    body: Any = None
    missed: str = "skip"
    start: datetime | str | None = None
    end: datetime | str | None = None

    def __post_init__(self) -> None:
        check_cron(self.cron)
        zone(self.tz)
        check_missed(self.missed)
        check_schedule_id(self.id)
        check_range(to_epoch(self.start, self.tz, "start"), to_epoch(self.end, self.tz, "end"))


def check_range(start_at: float | None, end_at: float | None) -> None:
    """Refuse an end at or before the start."""
    if start_at is not None and end_at is not None and end_at <= start_at:
        start, end = (datetime.fromtimestamp(t, UTC).isoformat() for t in (start_at, end_at))
        raise InvalidSchedule(f"end {end} is not after start {start}; move one of them", "end")
