"""The store's seams, one protocol per concern, each with its atomicity rules.

:class:`~pulseloop.store.base.Store` is their composite, what both backends implement;
everything else asks for the narrowest protocol it uses, so each dependency is visible:

=====================  ==========================================  ==========================
protocol               what it holds                               who depends on it
=====================  ==========================================  ==========================
:class:`RunStore`      runs as operators see and change them       ``OrgClient`` (API, CLI)
:class:`WorkerStore`   claims, fenced step writes, timers, leases  ``engine.Worker``
:class:`ScanReads`     a scan by id, by link, a run's latest       engine, scan connector
:class:`ScanStore`     a link's state machine, uploads, outcomes   scan connector, pages
:class:`AnalysisQueue` analysis jobs claimed with leases           ``AnalysisRunner``
:class:`OrgStore`      organizations and API keys                  CLI, HTTP auth
:class:`StatsStore`    totals for ``/metrics``                     ``server.metrics``
:class:`SessionStore`  dashboard sessions, failed sign-ins         ``server.sessions``
:class:`ScheduleStore` recurring triggers, firing the due ticks    worker, ``OrgClient``
:class:`RunDeadlines`  failing runs past their whole-run deadline  ``engine.Worker``
:class:`RateLimits`    permits of durable rate limits              ``engine.Execution``
:class:`TriggerWindows` debounce and dedupe windows on trigger     ``OrgClient``
=====================  ==========================================  ==========================

Rules every protocol keeps: each method that writes does so in one transaction (all of
it happens or none does; a backend may commit several callers' transactions together,
but a failing one is rolled back alone); every read and write is scoped by organization,
or reached through a run key a :class:`~pulseloop.store.records.Lease` proves, or
through a link token's hash. Times are epoch seconds; JSON payloads cross as
already-encoded ``str``.

Fencing: every write a worker makes on behalf of a run names its ``Lease``; the store
checks the lease on the run's row *in the same transaction* as the write (no check, then
write) and raises :class:`~pulseloop.store.records.LeaseLost`, writing nothing, when the
worker no longer holds the run. Operator actions never take a lease: they change the
run's row, and that is what makes the holder's next fenced write fail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from pulseloop.store.records import (
    AnalysisJob,
    AttemptRecord,
    ChildStart,
    DeployRecord,
    Firing,
    History,
    KeyRecord,
    Lease,
    OrgRecord,
    RunDetail,
    RunFamily,
    RunRecord,
    ScanRecord,
    ScheduleRecord,
    SessionRecord,
    Signal,
    StepRecord,
    StoreStats,
    TimerOutcome,
    TriggerWindow,
    WaitRecord,
)


class RunStore(Protocol):
    """Runs as operators and clients see them: create, read, signal, and the operator
    actions (cancel, pause, resume, retry, restart).

    Atomicity: each call is one transaction on the run's row (plus its step and attempt
    rows for retry and restart, which keep forgotten steps as attempt history in that
    same transaction). Nothing here is fenced: an action that takes a run from its worker
    (cancel, restart) clears the row's lease, so the worker's next fenced write raises
    ``LeaseLost``; pause keeps the lease, so the step in hand is recorded and the worker
    then stops. ``send_signal`` buffers the signal and wakes a waiting run together, so a
    wait reached later still finds it.
    """

    async def create_run(
        self,
        org: str,
        run_id: str,
        loop: str,
        input_json: str,
        now: float,
        deadline_at: float | None = None,
        trace_parent: str | None = None,
        *,
        priority: int = 0,
        flow_key: str | None = None,
        flow_limit: int = 0,
    ) -> tuple[RunRecord, bool]:
        """Insert a queued run; if ``run_id`` exists return it instead (created=False).

        ``deadline_at``: when the run fails with ``RunTimeout`` if still unfinished.
        ``trace_parent``: the W3C traceparent its spans join (engine/tracing.py).
        ``priority``: claimed before queued runs of lower priority (FIFO within one).
        ``flow_key``: the run's concurrency key, already hashed (never a raw patient id):
        at most ``flow_limit`` runs of the key hold a slot (run) at once; the limit is
        stored per key, the last trigger's wins (see docs/flow-control.md)."""

    async def get_run(self, org: str, run_id: str) -> RunRecord | None:
        """The run, or None if it does not exist in ``org``."""

    async def run_status(self, org: str, run_id: str) -> str | None:
        """The run's status alone, or None if it does not exist in ``org``: what a waiter
        polls, so a poll reads one plaintext column and opens no sealed payload."""

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

    async def send_signal(
        self, org: str, run_id: str, key: str, payload_json: str, now: float
    ) -> bool:
        """Buffer a signal for the run and wake it if it is waiting; False if no run."""

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

    async def list_deploys(self, org: str) -> list[DeployRecord]:
        """Every loop version seen, newest first."""


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


class WorkerStore(WorkerLiveness, Protocol):
    """The worker's side: claims, leases, fenced step writes, waits, timers.

    Atomicity and fencing: a claim takes each run in one statement (queued runs, and
    running ones whose lease expired), so two workers never both hold one run. Every
    method taking a :class:`Lease` checks it on the run's row in the same transaction as
    its write and raises ``LeaseLost`` (writing nothing) when it no longer holds; a step
    record, the wait it closes and the signal it consumes are written together. Backends
    may group several runs' fenced writes into one commit, but a call returns only after
    its own commit. ``fire_timers`` re-queues each due run, and expires each due scan
    (with its signal), exactly once however many workers race for them.
    """

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

    async def record_deploy(self, org: str, loop: str, version: str, now: float) -> None:
        """Note that a worker serves ``version`` of ``loop``."""


class ScanReads(Protocol):
    """Scans as read: by id within an organization, by link, a run's latest (each one
    read, nothing changes)."""

    async def latest_scan(self, org: str, run_id: str) -> ScanRecord | None:
        """The run's most recently provisioned scan."""

    async def get_scan(self, org: str, scan_id: str) -> ScanRecord | None:
        """A scan of this organization by id."""

    async def scan_by_token(self, token_hash: str) -> ScanRecord | None:
        """The scan a link token opens (the token is the patient's only credential)."""


class ScanStore(ScanReads, Protocol):
    """A scan link's life: provisioning, the patient's journey, the upload, the outcome.

    Atomicity: a scan's terminal status (completed, failed, expired) inserts its run's
    ``scan:<id>`` signal and wakes the run if it waits, in the same transaction, so the
    outcome is never recorded without the run hearing of it. Moves are compare-and-set on
    the scan's status (and its expiry): of two racing callers one wins, the other gets
    None and nothing changes.
    """

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


class AnalysisQueue(ScanStore, WorkerLiveness, Protocol):
    """Accepted uploads to analyse, claimed with a lease like runs (see
    :mod:`pulseloop.connectors.analysis`); ``finish_scan`` drops the job in the
    transaction that records the outcome. A dead analyser's jobs are claimable at once
    once its liveness token is gone, or when their lease runs out."""

    async def claim_analyses(
        self, worker: str, limit: int, lease_now: float, lease_s: float
    ) -> list[AnalysisJob]:
        """Claim up to ``limit`` analysis jobs nobody holds (new, or whose lease expired),
        oldest first, across organizations."""


class OrgStore(Protocol):
    """Organizations and their API keys (only key hashes are stored). Each call is one
    transaction; names and key hashes are unique, so racing creators get one winner and
    ``OrgExists`` for the other."""

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


class StatsStore(Protocol):
    """Totals across organizations for ``/metrics`` (one read; nothing is named)."""

    async def stats(self, steps_since: float) -> StoreStats:
        """Totals across organizations for ``/metrics``; see :class:`StoreStats`."""


class SessionStore(Protocol):
    """Dashboard sessions and failed sign-ins, shared by every server process.

    The database is the one place these live, so a restart or a second server process
    keeps people signed in and a sign-in throttle holds across processes. Expiry, the idle
    timeout and the key's revocation are checked in the lookup's SQL, never by the caller.
    Revoking a key deletes its sessions in the same transaction. Each method is one
    transaction; see ``store/sqlite/sessions.py``.
    """

    async def create_session(
        self, session: SessionRecord, *, replaces: str | None, max_per_key: int, purge: int
    ) -> None:
        """Insert ``session``; in the same transaction drop the session ``replaces`` names
        (a token hash), the key's oldest sessions beyond ``max_per_key``, and at most
        ``purge`` ended sessions of anyone."""

    async def find_session(
        self, token_hash: str, now: float, touch_after_s: float
    ) -> SessionRecord | None:
        """The session if it has not ended (expired or idle) and its key is unrevoked and
        still of its org; None otherwise. Moves ``last_seen_at`` to ``now`` when it is
        more than ``touch_after_s`` old (so a busy session costs a write a minute, not
        one per request)."""

    async def drop_session(self, token_hash: str) -> None:
        """End a session (sign-out); nothing happens if it is gone already."""

    async def purge_sessions(self, now: float, limit: int) -> int:
        """Delete at most ``limit`` ended sessions; return how many."""

    async def begin_sign_in(
        self, names: Sequence[str], attempt: str, now: float, window_s: float, failures: int
    ) -> float:
        """Count a sign-in ``attempt`` against each of ``names`` unless one of them already
        has ``failures`` failures in the last ``window_s``: then record nothing and return
        the seconds until the oldest of those leaves the window. 0.0: go ahead; the
        attempt stands as a failure until :meth:`forget_sign_in` (so concurrent guesses
        from many processes count before any of them is checked). Also purges failures
        older than the window, a bounded batch at a time."""

    async def forget_sign_in(self, attempt: str) -> None:
        """The attempt succeeded: it is no failure."""


class ScheduleStore(Protocol):
    """Recurring triggers: their rows, and firing the due ones (see ``engine/schedules.py``).

    The store knows no cron: the engine passes ``plan``, which turns a due schedule into a
    :class:`~pulseloop.store.records.Firing`, and the store applies it in the same
    transaction that claimed the row (racing stores each plan a due row once: ``FOR UPDATE
    SKIP LOCKED`` on PostgreSQL, the single writer on SQLite).
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
    """Failing runs whose whole-run deadline passed (see ``engine/deadlines.py``).

    Atomicity: each expired run is failed in one transaction with its lease cleared and
    its waits dropped, as a cancel would, so its worker's next fenced write raises
    ``LeaseLost``."""

    async def expire_deadlines(
        self, org: str, now: float, error: dict[str, Any]
    ) -> tuple[list[str], float | None]:
        """Fail every unfinished run of ``org`` whose ``deadline_at`` has passed with
        ``error``, as a cancel would (its worker loses the lease, its waits go); return
        (their run keys, the org's next deadline)."""


class RateLimits(Protocol):
    """Durable rate limits shared by every process on the database (see
    ``engine/flow.py``). Each call is one transaction; on PostgreSQL it holds the key's
    row lock while it counts, so racing processes decide one at a time."""

    async def take_permit(
        self, org: str, key: str, limit: int, period_s: float, now: float
    ) -> float | None:
        """Grant a permit (None) if fewer than ``limit`` were granted for ``key`` in the
        ``period_s`` before ``now``; otherwise grant nothing and return when the oldest
        of them leaves the window (when a permit may be free)."""


class TriggerWindows(Protocol):
    """Debounce and dedupe windows on trigger (see
    :class:`~pulseloop.store.records.TriggerWindow`). One transaction per call; on
    PostgreSQL it holds a lock on the window's key, so racing triggers of one key take
    turns and see each other's run."""

    async def create_run_windowed(
        self,
        org: str,
        run_id: str,
        loop: str,
        input_for: Callable[[str], str],
        now: float,
        window: TriggerWindow,
        deadline_at: float | None = None,
        trace_parent: str | None = None,
        *,
        priority: int = 0,
        flow_key: str | None = None,
        flow_limit: int = 0,
    ) -> tuple[RunRecord, bool]:
        """Create the run as ``create_run`` would, unless ``window`` names a run already:
        dedupe returns it (created=False) while the window lasts; debounce, while that run
        has not started, writes ``input_for(its id)`` as its input and moves its start to
        ``now + window.seconds``. A debounced new run is created ``waiting`` until then.
        ``input_for`` gives the input as stored for a run id (synchronous: it runs inside
        the transaction; an encrypting store seals per row). ``trace_parent``: as for
        ``create_run``, stored on a new run only."""


@runtime_checkable
class InlineCommits(Protocol):
    """A store that can skip its group-commit hand-off when there is nobody to group."""

    def commit_inline_when(self, solo: Callable[[], bool]) -> None:
        """Commit on the caller's thread while ``solo()`` (the worker executes at most
        one run) and the database is idle."""


class ChildRuns(Protocol):
    """Child runs (``step.run_loop``; see ``engine/children.py``).

    Atomicity: the child's row and the parent's wait for it are inserted in one fenced
    transaction, both idempotently, so a crash and a replay find the first child. A run's
    terminal transition (finish, cancel, deadline) signals its parent in the same
    transaction, waking it once none of its open child waits lacks a signal, and cancels
    its unfinished descendants (a recursive query, in that transaction too): children
    never outlive their parent.
    """

    async def start_child(
        self, lease: Lease, child: ChildStart, wait: WaitRecord
    ) -> tuple[RunRecord, bool]:
        """Insert the queued child (in the parent's organization, linked to the run
        ``lease`` holds) and ``wait`` unless they exist; return the child as stored and
        whether it is this parent step's child (False: another run owns the id). The
        child's pending signals to this parent are consumed: its row says how it ended."""

    async def run_family(self, org: str, run_id: str, limit: int = 500) -> RunFamily | None:
        """The run's parent and up to ``limit`` descendants; None if no such run."""


class TimerPass(Protocol):
    """The worker's timer pass as one store call: one transaction, one round trip.

    Atomicity: what :meth:`WorkerStore.fire_timers`,
    :meth:`ScheduleStore.fire_schedules` and :meth:`RunDeadlines.expire_deadlines` each
    promise, in that order, committed together (a run whose wake time and deadline both
    passed is re-queued and then failed, as three separate calls would have left it)."""

    async def timer_pass(
        self,
        org: str,
        now: float,
        plan: Callable[[ScheduleRecord], Firing],
        limit: int,
        deadline_error: dict[str, Any],
    ) -> TimerOutcome:
        """Re-queue due runs and expire due scans, fire up to ``limit`` due schedules
        (``plan`` as for ``fire_schedules``), fail runs past their deadline with
        ``deadline_error``; what was done and when the next pass is due."""
