"""The records that cross the store boundary: runs, steps, waits, scans, organizations.

Plain frozen dataclasses, shared by the engine, the backends and the HTTP layer. Times are
epoch seconds as floats; JSON payloads are already-encoded ``str`` so the engine alone
owns the codec and its limits. The protocols that move these records live in
:mod:`pulseloop.store.protocols`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

RUN_STATUSES = ("queued", "running", "waiting", "paused", "completed", "failed", "cancelled")
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


class LeaseLost(BaseException):
    """The worker no longer holds the run (lease expired, run cancelled or restarted).

    A BaseException so user code's ``except Exception`` cannot swallow it: the execution
    must unwind without writing anything more.
    """


@dataclass(frozen=True, slots=True)
class Lease:
    """Proof that ``worker`` claimed the run with key ``run_id`` (``RunRecord.key``);
    passed to every fenced write."""

    run_id: str
    worker: str
    org: str = ""
    """The run's organization: whose data key seals what the worker writes."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as stored."""

    org: str
    id: str
    loop: str
    status: str
    input: str
    output: str | None
    error: dict[str, Any] | None
    generation: int
    history_len: int
    """Non-zero once the run has any step, wait or attempt row (0: nothing to replay)."""
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    wake_at: float | None
    key: str = ""
    """The run's internal key, unique across organizations: what its steps, attempts,
    waits, signals and leases refer to. Run ids are unique per organization only (two
    clinics may both trigger ``follow-up-42``), so the store keys a run's history by this.
    It equals ``id`` unless another organization already used that id."""
    summary: str | None = None
    """The loop's line for run lists (see ``Loop.summary``), or None."""
    deadline_at: float | None = None
    """When the run, if still unfinished, fails with ``RunTimeout`` (None: no deadline)."""
    purged_at: float | None = None
    """When retention purged the run's payloads (None: not purged). A purged run keeps its
    ids, statuses, step names and times; its input, output, error and summary are gone."""
    trace_parent: str | None = None
    """The W3C traceparent of the span that triggered the run (engine/tracing.py), or
    None: the trace every pass's span joins."""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.id)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """A step's (or wait's) final result: what replay returns instead of running it."""

    run_id: str
    name: str
    seq: int
    kind: str
    status: str  # "completed" | "failed"
    output: str | None
    error: dict[str, Any] | None
    attempts: int
    started_at: float
    finished_at: float
    version: str | None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """A failed attempt of a step that was retried.

    The final attempt (success, or the failure that ended the step) is the step record
    itself, so a step that succeeds at once costs one row.
    """

    run_id: str
    step: str
    generation: int
    attempt: int
    status: str  # "completed" | "failed"
    started_at: float
    finished_at: float
    error: dict[str, Any] | None
    retry_at: float | None
    version: str | None
    worker: str | None


@dataclass(frozen=True, slots=True)
class WaitRecord:
    """A durable wait the run reached and that has not resolved yet."""

    run_id: str
    name: str
    seq: int
    kind: str  # "sleep" | "event" | "scan" | ...
    key: str | None
    deadline_at: float | None
    created_at: float


@dataclass(frozen=True, slots=True)
class Signal:
    """A buffered signal (event, scan outcome) a wait can consume."""

    id: int
    run_id: str
    key: str
    payload: str
    created_at: float


@dataclass(frozen=True, slots=True)
class RunDetail:
    """A run and everything its timeline shows, from one consistent read."""

    run: RunRecord
    steps: list[StepRecord]
    attempts: list[AttemptRecord]
    waits: list[WaitRecord]


@dataclass(frozen=True, slots=True)
class DeployRecord:
    """A loop version some worker served."""

    org: str
    loop: str
    version: str
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class OrgRecord:
    """An organization: everything else belongs to exactly one."""

    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An API key of an organization (the key itself is never stored, only its hash)."""

    id: str
    org: str
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Totals across organizations for ``/metrics`` (no org, run or scan is named)."""

    runs_by_status: dict[str, int]
    scans_by_status: dict[str, int]
    step_latencies_s: list[float]
    """Durations of ``do`` steps finished after the ``steps_since`` asked for."""
    steps_until: float
    """Pass this as ``steps_since`` next time so each step is counted once."""


SCAN_OPEN_STATUSES = ("pending", "opened", "aligning", "capturing")
"""A scan that can still take its one upload, in the order of the patient's journey:
link sent, page opened, camera on and the checks running, filming. Open scans expire."""
SCAN_TERMINAL_STATUSES = frozenset({"completed", "failed", "expired"})
SCAN_STATUSES = (*SCAN_OPEN_STATUSES, "processing", "completed", "failed", "expired")
"""Every scan status, in the order of a patient's journey."""


@dataclass(frozen=True, slots=True)
class ScanRecord:
    """A facial scan as stored (the link token only as its hash)."""

    org: str
    id: str
    run_id: str
    step: str
    status: str  # one of SCAN_OPEN_STATUSES, processing, or SCAN_TERMINAL_STATUSES
    metadata: str
    result: str | None
    failure_reason: str | None
    created_at: float
    updated_at: float
    expires_at: float
    completed_at: float | None

    def payload(self) -> dict[str, Any]:
        """What ``wait_for_scan`` and ``get_results`` return: plain JSON, metadata
        echoed back unchanged, vitals and quality once analysed, ISO timestamps."""
        result = json.loads(self.result) if self.result else {}
        return {
            "id": self.id,
            "status": self.status,
            "metadata": json.loads(self.metadata),
            "vitals": result.get("vitals"),
            "quality": result.get("quality"),
            "failure_reason": self.failure_reason,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "completed_at": None if self.completed_at is None else _iso(self.completed_at),
        }


@dataclass(frozen=True, slots=True)
class AnalysisJob:
    """An accepted scan upload to analyse (claimed with a lease; see ``accept_upload``)."""

    scan_id: str
    org: str
    kind: str  # "trace": payload is the uploaded JSON | "video": payload is a file path
    payload: str
    attempts: int
    """Claims so far, this one included: a job that keeps killing its analyser is
    failed after a few instead of being retried forever."""
    created_at: float


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def fallback_run_key(org: str, run_id: str) -> str:
    """The key of a new run whose id another organization's run already has as its key.

    ``/`` never appears in a run id (see ``pulseloop.runs``), so this cannot be any
    run's id; the random tail keeps it unique whatever older rows hold."""
    return f"{org}/{run_id}/{uuid.uuid4().hex[:12]}"


def scan_signal_key(scan_id: str) -> str:
    """The signal a scan's terminal status sends to its run."""
    return f"scan:{scan_id}"


SCAN_SIGNAL_PAYLOAD = '{"from": "scan"}'
"""What a scan's signal row holds: nothing of the patient's. The store layer that opens
payloads (:mod:`pulseloop.store.sealed`) hands the wait the scan's own record instead, so
vitals and metadata exist once, encrypted, in the scan row."""


@dataclass(slots=True)
class History:
    """Everything replay needs, loaded once when a worker starts executing a run."""

    steps: dict[str, StepRecord] = field(default_factory=dict)
    waits: dict[str, WaitRecord] = field(default_factory=dict)
    failures: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    """step name -> (failed attempts in this generation, when the next may start)"""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A dashboard sign-in as stored: never the cookie's token, only its SHA-256."""

    token_hash: str
    org: str
    key_id: str
    created_at: float
    last_seen_at: float
    expires_at: float
    """The absolute end, however active the session is."""
    idle_s: float
    """The session ends this long after ``last_seen_at`` (the idle timeout)."""


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A recurring trigger as stored (see ``pulseloop.schedules``).

    ``next_fire_at`` is None while the schedule is paused or once it has passed its end:
    only schedules with a next fire time are ever read by the due-check.
    """

    org: str
    id: str
    loop: str
    cron: str
    tz: str
    body: str
    missed: str  # "skip" | "catch_up_last"
    start_at: float | None
    end_at: float | None
    paused: bool
    next_fire_at: float | None
    last_fire_at: float | None
    last_run_id: str | None
    source: str  # "code" (declared on a Loop) | "api" (created at run time)
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Firing:
    """What a due schedule does now: start the run ``run_id`` for the tick ``tick_at``
    (None: a missed tick the policy skips), then wait until ``next_fire_at`` (None: never
    again)."""

    tick_at: float | None
    run_id: str | None
    next_fire_at: float | None
    deadline_at: float | None = None
    """The tick's run's deadline (its loop's ``run_timeout`` after the tick), if any."""
    run_input: str | None = None
    """The tick's run's input as the store should write it; None: the schedule's ``body``
    as stored. A layer that seals payloads per row (an encrypting store) wraps ``plan``
    to set it, since the body sealed for the schedule's row cannot be copied as is."""
    trace_parent: str | None = None
    """The traceparent to store on the tick's run (engine/tracing.py), or None."""


CHILD_SIGNAL_PREFIX = "child:"


def child_signal_key(child_key: str) -> str:
    """The signal a child run's end leaves its parent (a wake-up hint: the child's row,
    not the signal, says how it ended)."""
    return f"{CHILD_SIGNAL_PREFIX}{child_key}"


@dataclass(frozen=True, slots=True)
class ChildStart:
    """A child run that a parent's ``step.run_loop`` starts (see ``ChildRuns``)."""

    run_id: str
    """The child's id, derived from the parent's id and the step name."""
    loop: str
    input: str
    step: str
    """The parent's step that starts it: one child per (parent run, step)."""
    created_at: float
    deadline_at: float | None = None
    trace_parent: str | None = None
    """The W3C traceparent of the span that started it, so the child joins the parent's
    trace (None while tracing is off)."""


@dataclass(frozen=True, slots=True)
class ChildRun:
    """One run of a family tree as lists show it (no payloads)."""

    id: str
    loop: str
    status: str
    parent_id: str
    step: str
    created_at: float
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class RunFamily:
    """A run's place in its tree: who started it, and every run it started (at any depth,
    each naming its parent, oldest first)."""

    parent_id: str | None
    parent_step: str | None
    descendants: list[ChildRun] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TimerOutcome:
    """What one timer pass did (:meth:`~pulseloop.store.protocols.TimerPass.timer_pass`)."""

    fired: int
    """Waiting runs re-queued and open scans expired (as ``fire_timers`` counts them)."""
    started: int
    """Runs of due schedule ticks inserted."""
    timed_out: tuple[str, ...]
    """Keys of the runs failed because their deadline passed."""
    next_at: float | None
    """The earliest of the org's next wake, scan expiry, schedule tick and run deadline."""


@dataclass(frozen=True, slots=True)
class TriggerWindow:
    """A debounce or dedupe window on trigger (docs/flow-control.md).

    ``kind`` "dedupe": a trigger with the same ``key`` within ``seconds`` of the first
    returns the first run. "debounce" (trailing): the run waits until ``seconds`` pass
    with no trigger of the same key; each trigger meanwhile replaces its input and
    restarts the wait. ``key`` is already hashed (it may be derived from patient data)."""

    kind: str
    key: str
    seconds: float


def window_open(run: RunRecord) -> bool:
    """Whether a debounced run still takes new triggers: it has not started yet."""
    return run.status == "waiting" and run.started_at is None
