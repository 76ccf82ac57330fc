"""The JSON shapes of the ``/v1`` API (pydantic models, so ``/openapi.json`` states them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pulseloop.runs import Attempt, Run, StepInfo
from pulseloop.schedules import Schedule
from pulseloop.store.base import ScanRecord

RunStatus = Literal["queued", "running", "waiting", "paused", "completed", "failed", "cancelled"]


class ErrorOut(BaseModel):
    """Every error: a stable ``code``, a message a person can act on, maybe a ``field``."""

    code: str
    message: str
    field: str | None = None


class TriggerIn(BaseModel):
    """Start a run: the event body, and an optional idempotency id."""

    model_config = ConfigDict(extra="forbid")
    body: Any = None
    # checked by App.trigger (one rule, one message: InvalidRunId, 422 invalid_run_id)
    id: str | None = Field(
        default=None, description="1-200 characters of A-Za-z0-9._~:- (not only dots)"
    )
    # flow control (docs/flow-control.md), checked by App.trigger: 422 invalid_flow_control
    priority: int | None = Field(default=None, description="higher is claimed first")
    debounce: str | None = Field(default=None, description='a duration, e.g. "5 minutes"')
    debounce_key: str | None = None
    dedupe: str | None = Field(default=None, description='a duration, e.g. "10 minutes"')
    dedupe_key: str | None = None


class RestartIn(BaseModel):
    """Restart a run from a named step."""

    model_config = ConfigDict(extra="forbid")
    from_step: str = Field(min_length=1, max_length=1000)


class AttemptOut(BaseModel):
    """One execution of a step's callback."""

    number: int
    status: str
    started_at: datetime
    finished_at: datetime
    duration_s: float
    error: dict[str, Any] | None
    version: str | None

    @classmethod
    def of(cls, a: Attempt) -> AttemptOut:
        """From the public record."""
        return cls(
            number=a.number, status=a.status, started_at=a.started_at,
            finished_at=a.finished_at, duration_s=a.duration.total_seconds(), error=a.error,
            version=a.version,
        )  # fmt: skip


class StepOut(BaseModel):
    """A step, sleep or wait of a run's timeline."""

    name: str
    kind: str
    status: str
    output: Any
    error: dict[str, Any] | None
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    deadline: datetime | None
    version: str | None
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, s: StepInfo) -> StepOut:
        """From the public record."""
        return cls(
            name=s.name, kind=s.kind, status=s.status, output=s.output, error=s.error,
            started_at=s.started_at, finished_at=s.finished_at,
            duration_s=None if s.duration is None else s.duration.total_seconds(),
            deadline=s.deadline, version=s.version,
            attempts=[AttemptOut.of(a) for a in s.attempts],
        )  # fmt: skip


class RunOut(BaseModel):
    """A run; ``steps`` is filled on ``GET /v1/runs/{id}`` only."""

    id: str
    loop: str
    status: str
    body: Any
    output: Any
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    wake_at: datetime | None
    summary: str | None = None
    """The loop's line for run lists (``Loop.summary``), or null."""
    purged_at: datetime | None = None
    """When retention purged the run's patient data (null: not purged). A purged run's
    body, output, error, summary and step outputs are null; ids, statuses and times stay."""
    steps: list[StepOut] | None = None

    @classmethod
    def of(cls, run: Run, *, steps: bool = False) -> RunOut:
        """From the public record."""
        return cls(
            id=run.id, loop=run.loop, status=run.status, body=run.body, output=run.output,
            error=run.error, created_at=run.created_at, updated_at=run.updated_at,
            started_at=run.started_at, finished_at=run.finished_at, wake_at=run.wake_at,
            summary=run.summary, purged_at=run.purged_at,
            steps=[StepOut.of(s) for s in run.steps] if steps else None,
        )  # fmt: skip


class RunPage(BaseModel):
    """A page of runs, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    runs: list[RunOut]
    next_cursor: str | None


class ScanOut(BaseModel):
    """A scan's state and, once analysed, its result (never its link token)."""

    id: str
    run_id: str
    status: str
    metadata: Any
    vitals: dict[str, Any] | None
    quality: dict[str, Any] | None
    failure_reason: str | None
    created_at: datetime
    expires_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, scan: ScanRecord) -> ScanOut:
        """From the stored record."""
        p = scan.payload()
        return cls(
            id=scan.id, run_id=scan.run_id, status=scan.status, metadata=p["metadata"],
            vitals=p["vitals"], quality=p["quality"], failure_reason=scan.failure_reason,
            created_at=p["created_at"], expires_at=p["expires_at"],
            completed_at=p["completed_at"],
        )  # fmt: skip


class ScheduleIn(BaseModel):
    """Create (or replace, with an existing ``id``) a recurring trigger of ``loop``."""

    model_config = ConfigDict(extra="forbid")
    loop: str = Field(min_length=1, max_length=200)
    # cron, tz, missed, id, start and end are checked by app.schedules.create (one rule,
    # one message: InvalidSchedule, 422 invalid_schedule naming the field)
    cron: str = Field(max_length=200, description="5 fields, e.g. '0 8 * * *'")
    tz: str = Field(default="UTC", max_length=100, description="an IANA time zone")
    body: Any = None
    id: str | None = Field(default=None, description="1-150 characters of A-Za-z0-9._~-")
    missed: str = Field(default="skip", max_length=40, description="skip | catch_up_last")
    start: str | None = Field(default=None, max_length=64, description="ISO 8601")
    end: str | None = Field(default=None, max_length=64, description="ISO 8601")


class ScheduleOut(BaseModel):
    """A schedule, with its next fire times."""

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
    upcoming: list[datetime]
    last_fire: datetime | None
    last_run_id: str | None
    source: str
    created_at: datetime

    @classmethod
    def of(cls, s: Schedule) -> ScheduleOut:
        """From the public record."""
        return cls(
            id=s.id, loop=s.loop, cron=s.cron, tz=s.tz, body=s.body, missed=s.missed,
            start=s.start, end=s.end, paused=s.paused, next_fire=s.next_fire,
            upcoming=list(s.upcoming), last_fire=s.last_fire, last_run_id=s.last_run_id,
            source=s.source, created_at=s.created_at,
        )  # fmt: skip


class SchedulePage(BaseModel):
    """The organization's schedules, by id."""

    schedules: list[ScheduleOut]


class HealthOut(BaseModel):
    """``/healthz``: the process is up and its database answers."""

    status: Literal["ok"]
