"""What operators and embedding code read about runs: :class:`Run` and its steps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pulseloop.engine.codec import decode
from pulseloop.store.base import (
    TERMINAL_STATUSES,
    AttemptRecord,
    DeployRecord,
    RunRecord,
    StepRecord,
    WaitRecord,
)


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One execution of a step's callback."""

    number: int
    status: str
    started_at: datetime
    finished_at: datetime
    error: dict[str, Any] | None
    version: str | None

    @property
    def duration(self) -> timedelta:
        """How long the attempt ran."""
        return self.finished_at - self.started_at


@dataclass(frozen=True, slots=True)
class StepInfo:
    """A step (or sleep / wait) as the timeline shows it.

    ``status`` is ``completed`` or ``failed`` once recorded, ``retrying`` between failed
    attempts, ``waiting`` for a wait or sleep not yet over.
    """

    name: str
    kind: str
    status: str
    output: Any
    error: dict[str, Any] | None
    started_at: datetime
    finished_at: datetime | None
    deadline: datetime | None
    version: str | None
    attempts: tuple[Attempt, ...]

    @property
    def duration(self) -> timedelta | None:
        """From the first attempt (or the wait being reached) to the result."""
        return None if self.finished_at is None else self.finished_at - self.started_at


@dataclass(frozen=True, slots=True)
class Run:
    """A run's state: status, input, output or error, and its step timeline."""

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
    steps: tuple[StepInfo, ...] = ()
    summary: str | None = None
    """The loop's line for run lists (``Loop.summary``)."""
    deadline: datetime | None = None
    """When the run fails with ``RunTimeout`` if still unfinished (None: no deadline)."""
    purged_at: datetime | None = None
    """When retention purged the run's patient data (None: not purged). A purged run's
    body, output, error, summary and step outputs read as None; its timeline remains."""

    @property
    def done(self) -> bool:
        """Completed, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    def step(self, name: str) -> StepInfo:
        """The step called ``name`` (KeyError naming the known steps otherwise)."""
        for info in self.steps:
            if info.name == name:
                return info
        raise KeyError(
            f"run {self.id!r} has no step {name!r}; it has {[s.name for s in self.steps]}"
        )


@dataclass(frozen=True, slots=True)
class Deploy:
    """A version of a loop that some worker served."""

    loop: str
    version: str
    first_seen: datetime
    last_seen: datetime


def build_run(
    record: RunRecord,
    steps: list[StepRecord] | None = None,
    attempts: list[AttemptRecord] | None = None,
    waits: list[WaitRecord] | None = None,
) -> Run:
    """Assemble the public view of a run from its records."""
    by_step: dict[str, list[Attempt]] = {}
    retrying: set[str] = set()  # failed in this generation, retry pending
    for a in attempts or []:
        by_step.setdefault(a.step, []).append(
            Attempt(a.attempt, a.status, _dt(a.started_at), _dt(a.finished_at), a.error, a.version)
        )
        if a.generation == record.generation and a.retry_at is not None:
            retrying.add(a.step)
    infos: list[tuple[int, StepInfo]] = []
    for s in steps or []:
        tries = by_step.pop(s.name, [])
        if s.kind == "do":  # the step record is its final attempt
            begun = tries[-1].finished_at if tries else _dt(s.started_at)
            final = Attempt(s.attempts, s.status, begun, _dt(s.finished_at), s.error, s.version)
            tries.append(final)
        first = tries[0].started_at if tries else _dt(s.started_at)
        infos.append((s.seq, StepInfo(
            s.name, s.kind, s.status, decode(s.output), s.error, first, _time(s.finished_at),
            None, s.version, tuple(tries),
        )))  # fmt: skip
    for w in waits or []:
        infos.append((w.seq, StepInfo(
            w.name, w.kind, "waiting", None, None, _dt(w.created_at), None,
            _time(w.deadline_at), None, tuple(by_step.pop(w.name, ())),
        )))  # fmt: skip
    for name, tries in by_step.items():  # failed attempts of a step that will be retried
        if name in retrying and record.status not in TERMINAL_STATUSES:
            infos.append((1 << 30, StepInfo(
                name, "do", "retrying", None, tries[-1].error, tries[0].started_at, None,
                None, tries[-1].version, tuple(tries),
            )))  # fmt: skip
    infos.sort(key=lambda pair: (pair[0], pair[1].started_at))
    return Run(
        id=record.id,
        loop=record.loop,
        status=record.status,
        body=decode(record.input),
        output=decode(record.output),
        error=record.error,
        created_at=_dt(record.created_at),
        updated_at=_dt(record.updated_at),
        started_at=_time(record.started_at),
        finished_at=_time(record.finished_at),
        wake_at=_time(record.wake_at),
        steps=tuple(info for _, info in infos),
        summary=record.summary,
        deadline=_time(record.deadline_at),
        purged_at=_time(record.purged_at),
    )


def build_deploy(record: DeployRecord) -> Deploy:
    """The public view of a deploy record."""
    return Deploy(record.loop, record.version, _dt(record.first_seen), _dt(record.last_seen))


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)
