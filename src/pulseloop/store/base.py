"""The storage interface the engine is written against, documented once.

Two backends implement it (SQLite now, PostgreSQL next); the engine never sees SQL. Every
read and write is scoped by organization or reached through a run id that was (a lease
proves the caller claimed it). Times are epoch seconds as floats. JSON payloads cross this
boundary already encoded (``str``) so the engine alone owns the codec and its limits.

Fencing: every write a worker makes on behalf of a run names its :class:`Lease`; the store
applies it only if that worker still holds the run, otherwise it raises
:class:`LeaseLost` and writes nothing. That is what makes
"a dead worker's late write" harmless after another worker took the run over.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

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


@dataclass(slots=True)
class History:
    """Everything replay needs, loaded once when a worker starts executing a run."""

    steps: dict[str, StepRecord] = field(default_factory=dict)
    waits: dict[str, WaitRecord] = field(default_factory=dict)
    failures: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    """step name -> (failed attempts in this generation, when the next may start)"""


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


class ScheduleStore(Protocol):
    """Recurring triggers: their rows, and firing the due ones (see ``engine/schedules.py``).

    The store knows no cron: the engine passes ``plan``, which turns a due schedule into a
    :class:`Firing`, and the store applies it in the same transaction that claimed the row.
    """

    async def put_schedule(self, record: ScheduleRecord) -> ScheduleRecord:
        """Insert the schedule, or replace the definition of the one with its id.

        A replaced schedule keeps its pause state, creation time and last fire; it keeps
        its next fire time too unless its cron, zone, start or end changed (so restarting a
        worker that declares it never skips a due tick)."""

    async def get_schedule(self, org: str, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, or None if it is not in ``org``."""

    async def list_schedules(
        self, org: str, *, loop: str | None = None, limit: int = 200
    ) -> list[ScheduleRecord]:
        """The organization's schedules by id."""

    async def pause_schedule(
        self, org: str, schedule_id: str, paused: bool, next_fire_at: float | None, now: float
    ) -> ScheduleRecord | None:
        """Pause (``next_fire_at`` is ignored and cleared) or resume (it is set); None if
        there is no such schedule."""

    async def delete_schedule(self, org: str, schedule_id: str) -> bool:
        """Delete it (runs it started stay); False if there was none."""

    async def delete_code_schedules(self, org: str, loop: str, keep: list[str]) -> int:
        """Delete ``loop``'s schedules declared in code whose id is not in ``keep`` (the
        code no longer declares them); return how many."""

    async def fire_schedules(
        self, org: str, now: float, plan: Callable[[ScheduleRecord], Firing], limit: int
    ) -> tuple[int, float | None]:
        """Claim up to ``limit`` schedules due at ``now`` and, for each in one transaction,
        insert its tick's run (idempotently: an existing run id is left alone) and advance
        its next fire time. Return (runs inserted, the org's next fire time)."""


class RunDeadlines(Protocol):
    """Failing runs whose whole-run deadline passed (see ``engine/deadlines.py``)."""

    async def expire_deadlines(
        self, org: str, now: float, error: dict[str, Any]
    ) -> tuple[list[str], float | None]:
        """Fail every unfinished run of ``org`` whose ``deadline_at`` has passed with
        ``error``, as a cancel would (its worker loses the lease, its waits go); return
        (their run keys, the org's next deadline)."""


class WorkerLiveness(Protocol):
    """Proving a worker process dead, so its runs move at once instead of when its lease
    expires (see ``store/sqlite/liveness.py`` and ``store/postgres/liveness.py``). Only a
    machine that vanished without a trace is left to its leases."""

    async def register_worker(self, worker: str) -> None:
        """Hold ``worker``'s liveness token while this process lives."""

    async def unregister_worker(self, worker: str) -> None:
        """``worker`` stopped gracefully (its runs were handed back already)."""

    async def reclaim_dead_workers(self, now: float) -> int:
        """Queue again the runs held by workers proven dead; return how many."""


@runtime_checkable
class InlineCommits(Protocol):
    """A store that can skip its group-commit hand-off when there is nobody to group."""

    def commit_inline_when(self, solo: Callable[[], bool]) -> None:
        """Commit on the caller's thread while ``solo()`` (the worker executes at most
        one run) and the database is idle."""


class Store(WorkerLiveness, ScheduleStore, RunDeadlines, Protocol):
    """What a storage backend provides. All methods are coroutines; see module doc."""

    async def open(self) -> None:
        """Connect, migrate to the latest schema; refuse a newer one (SchemaTooNew)."""

    async def close(self) -> None:
        """Finish pending writes and disconnect."""

    # runs -------------------------------------------------------------------------
    async def create_run(
        self,
        org: str,
        run_id: str,
        loop: str,
        input_json: str,
        now: float,
        deadline_at: float | None = None,
    ) -> tuple[RunRecord, bool]:
        """Insert a queued run; if ``run_id`` exists return it instead (created=False).

        ``deadline_at``: when the run fails with ``RunTimeout`` if still unfinished."""

    async def get_run(self, org: str, run_id: str) -> RunRecord | None:
        """The run, or None if it does not exist in ``org``."""

    async def list_runs(
        self,
        org: str,
        *,
        loop: str | None = None,
        status: str | None = None,
        limit: int = 50,
        before: float | None = None,
        before_id: str | None = None,
        since: float | None = None,
    ) -> list[RunRecord]:
        """Newest first, optionally filtered; ``before`` pages by created_at.

        With ``before_id`` too, the page starts after the run ``(before, before_id)`` in
        (created_at, id) order, so runs created at the same instant are neither skipped nor
        repeated (the API's cursor). ``since`` keeps runs created at or after it.
        """

    async def get_run_detail(self, org: str, run_id: str) -> RunDetail | None:
        """The run with its steps, attempts and pending waits, read in one go."""

    # the worker's side --------------------------------------------------------------
    async def claim_runs(
        self,
        org: str,
        worker: str,
        loops: list[str],
        limit: int,
        lease_now: float,
        lease_s: float,
        now: float,
        run_id: str | None = None,
    ) -> list[RunRecord]:
        """Claim up to ``limit`` queued runs (or running ones whose lease expired)."""

    async def renew_leases(
        self, worker: str, run_ids: list[str], lease_now: float, lease_s: float
    ) -> set[str]:
        """Extend the leases; return the run ids the worker no longer holds."""

    async def load_history(self, run_id: str, generation: int) -> History:
        """Steps, pending waits and failure counts of a claimed run."""

    async def record_step(
        self, lease: Lease, step: StepRecord, consume_signal: int | None = None
    ) -> str:
        """Durably record a final step result (its last attempt); drop its wait.

        Returns the run's status after the write ("running", or "paused" when an operator
        paused it meanwhile). A step recorded already keeps its first record.
        """

    async def record_failed_attempt(self, lease: Lease, attempt: AttemptRecord) -> str:
        """Record a failed attempt that will be retried at ``attempt.retry_at``."""

    async def open_wait(self, lease: Lease, wait: WaitRecord) -> tuple[WaitRecord, Signal | None]:
        """Create the wait unless it exists; return the stored wait and the oldest
        unconsumed signal matching its key (None for sleeps or when none arrived)."""

    async def park_run(
        self, lease: Lease, wake_at: float | None, keys: list[str], now: float
    ) -> str:
        """Release the run as "waiting" until ``wake_at`` or a signal on ``keys``.

        If such a signal arrived meanwhile, or ``wake_at`` is past, the run goes straight
        back to "queued" (the returned status), so no wake-up is ever missed."""

    async def finish_run(
        self,
        lease: Lease,
        status: str,
        output: str | None,
        error: dict[str, Any] | None,
        now: float,
    ) -> None:
        """Record the run's end (completed or failed) and release it."""

    async def record_summary(self, lease: Lease, summary: str | None, now: float) -> None:
        """Set the run's summary line (fenced like every write of its worker)."""

    async def release_run(self, lease: Lease, now: float) -> None:
        """Give the run back at once: a running one is queued again, so any worker claims
        it now (a graceful stop must not strand it until a lease that was cleared expires);
        a paused one stays paused."""

    async def fire_timers(self, org: str, now: float) -> tuple[int, float | None]:
        """Re-queue waiting runs whose wake time has come and expire open scans past
        ``expires_at`` (signalling their runs); return (count, next wake or expiry)."""

    async def send_signal(
        self, org: str, run_id: str, key: str, payload_json: str, now: float
    ) -> bool:
        """Buffer a signal for the run and wake it if it is waiting; False if no run."""

    # operators ----------------------------------------------------------------------
    async def cancel_run(self, org: str, run_id: str, now: float) -> RunRecord:
        """Cancel an unfinished run (InvalidRunState if finished, RunNotFound)."""

    async def pause_run(self, org: str, run_id: str, now: float) -> RunRecord:
        """Pause a queued, waiting or running run."""

    async def resume_run(self, org: str, run_id: str, now: float, lease_now: float) -> RunRecord:
        """Put a paused run back to work."""

    async def retry_run(self, org: str, run_id: str, now: float) -> RunRecord:
        """Re-queue a failed run; its failed steps are forgotten and run again."""

    async def restart_run(self, org: str, run_id: str, from_step: str, now: float) -> RunRecord:
        """Forget ``from_step`` and every step recorded after it; re-queue the run."""

    # scans ----------------------------------------------------------------------------
    async def create_scan(
        self,
        org: str,
        run_id: str,
        step: str,
        scan_id: str,
        token_hash: str,
        metadata_json: str,
        now: float,
        expires_at: float,
    ) -> ScanRecord:
        """Insert a pending scan, or return the one this (run, step) made already."""

    async def latest_scan(self, org: str, run_id: str) -> ScanRecord | None:
        """The run's most recently provisioned scan."""

    async def get_scan(self, org: str, scan_id: str) -> ScanRecord | None:
        """A scan of this organization by id."""

    async def scan_by_token(self, token_hash: str) -> ScanRecord | None:
        """The scan a link token opens (the token is the patient's only credential)."""

    async def move_scan(
        self, token_hash: str, from_statuses: tuple[str, ...], to_status: str, now: float
    ) -> ScanRecord | None:
        """Move an open scan along (e.g. pending -> processing); None if it was not in
        ``from_statuses`` or has expired (then nothing changes)."""

    async def finish_scan(
        self,
        scan_id: str,
        status: str,
        result_json: str | None,
        failure_reason: str | None,
        now: float,
    ) -> ScanRecord:
        """Record the outcome; signal and wake the run and drop the scan's analysis job, in
        the same transaction. The first outcome wins: finishing a scan that is already
        completed, failed or expired changes nothing (two analysers that raced for one
        job signal the run once) and returns the stored record."""

    async def finish_open_scan(
        self,
        token_hash: str,
        from_statuses: tuple[str, ...],
        status: str,
        result_json: str | None,
        failure_reason: str | None,
        now: float,
    ) -> ScanRecord | None:
        """Finish the scan a link opens only if it is still in ``from_statuses`` and has
        not expired (the patient's page gave up), signalling its run, in one transaction;
        None (nothing changes) otherwise, e.g. an upload won the race."""

    async def accept_upload(
        self,
        token_hash: str,
        from_statuses: tuple[str, ...],
        kind: str,
        payload: str,
        now: float,
    ) -> ScanRecord | None:
        """Take the scan's one upload: move it from ``from_statuses`` to ``processing`` and
        store its :class:`AnalysisJob`, in one transaction. None (nothing changes) if the
        scan was not in ``from_statuses`` or has expired."""

    async def claim_analyses(
        self, worker: str, limit: int, lease_now: float, lease_s: float
    ) -> list[AnalysisJob]:
        """Claim up to ``limit`` analysis jobs nobody holds (new, or whose lease expired),
        oldest first, across organizations."""

    # deploys ------------------------------------------------------------------------
    async def record_deploy(self, org: str, loop: str, version: str, now: float) -> None:
        """Note that a worker serves ``version`` of ``loop``."""

    async def list_deploys(self, org: str) -> list[DeployRecord]:
        """Every loop version seen, newest first."""

    # organizations and API keys --------------------------------------------------------
    async def create_org(self, name: str, now: float) -> OrgRecord:
        """Create an organization (OrgExists if the name is taken)."""

    async def ensure_org(self, name: str, now: float) -> OrgRecord:
        """The organization, created if it does not exist yet."""

    async def get_org(self, name: str) -> OrgRecord | None:
        """One organization, or None."""

    async def list_orgs(self) -> list[OrgRecord]:
        """Every organization, oldest first."""

    async def create_key(self, org: str, key_id: str, key_hash: str, now: float) -> KeyRecord:
        """Store a new API key's SHA-256 for ``org`` (OrgNotFound if no such org)."""

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        """The key with this hash, revoked or not (the caller refuses revoked ones)."""

    async def list_keys(self, org: str) -> list[KeyRecord]:
        """The organization's keys, revoked ones included."""

    async def revoke_key(self, key_id: str, now: float) -> KeyRecord:
        """Revoke a key; its row stays with ``revoked_at`` (KeyNotFound if unknown)."""

    async def stats(self, steps_since: float) -> StoreStats:
        """Totals across organizations for ``/metrics``; see :class:`StoreStats`."""
