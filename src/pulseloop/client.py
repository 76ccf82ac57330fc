"""Acting for one organization: trigger, read, signal and operate its runs; read its scans;
manage its schedules.

An :class:`OrgClient` is what the HTTP layer gets per request for the organization of the
caller's key (``server/auth.py``), and what :class:`pulseloop.App` is for its own
organization. Every call is scoped by the client's organization, so a handler never names
one: another organization's run or scan is simply not found.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pulseloop.background import wait_event
from pulseloop.durations import Duration, duration_seconds
from pulseloop.engine import tracing
from pulseloop.engine.clock import Clock
from pulseloop.engine.codec import encode
from pulseloop.engine.deadlines import run_timeout_s
from pulseloop.engine.flow import trigger_flow, trigger_window
from pulseloop.engine.loop import Loop
from pulseloop.errors import InvalidRunId, LoopNotFound, RunNotFound
from pulseloop.runs import Deploy, Run, build_deploy, build_run
from pulseloop.schedules import Schedules
from pulseloop.store.audit import AuditRecord
from pulseloop.store.base import TERMINAL_STATUSES, RunFamily, RunRecord, ScanRecord
from pulseloop.store.protocols import ChildRuns, RunStore, ScanReads, TriggerWindows

if TYPE_CHECKING:
    from pulseloop.runtime import Runtime
    from pulseloop.store.audit import AuditAction
    from pulseloop.webhooks.endpoints import Webhooks

MAX_RUN_ID_CHARS = 200
RUN_ID_CHARS = "A-Z a-z 0-9 . _ ~ : -"
"""What a run id given to trigger may hold: URL-safe without escaping (RFC 3986
unreserved, plus ``:``), so ids read the same in URLs, logs and shells."""
_RUN_ID = re.compile(rf"[A-Za-z0-9._~:-]{{1,{MAX_RUN_ID_CHARS}}}")
_SETTLE_POLL_S = 0.05
_SETTLE_POLL_MAX_S = 1.0


class ClientStore(RunStore, ScanReads, ChildRuns, TriggerWindows, Protocol):
    """All a client asks of storage: runs as operators see them, scan reads, a run's
    family tree (parent and child runs), and debounce and dedupe windows."""


class OrgClient:
    """Operator access to one organization's runs and scans, through a shared runtime."""

    def __init__(self, runtime: Runtime, org: str) -> None:
        self.runtime = runtime
        self._org = org

    @property
    def org(self) -> str:
        """The organization every call acts for."""
        return self._org

    @property
    def loops(self) -> Mapping[str, type[Loop]]:
        """The loops this process serves, by name."""
        return self.runtime.loops

    @property
    def clock(self) -> Clock:
        """The runtime's clock (a FakeClock in tests)."""
        return self.runtime.clock

    @property
    def schedules(self) -> Schedules:
        """This organization's recurring triggers (see :class:`~pulseloop.schedules.Schedules`)."""
        return Schedules(self)

    @property
    def _store(self) -> ClientStore:
        return self.runtime.store

    # runs ------------------------------------------------------------------------------
    async def trigger(
        self,
        loop: str,
        body: Any = None,
        *,
        id: str | None = None,
        run_timeout: Duration | None = None,
        priority: int | None = None,
        debounce: Duration | None = None,
        debounce_key: str | None = None,
        dedupe: Duration | None = None,
        dedupe_key: str | None = None,
    ) -> Run:
        """Start a run of ``loop`` with ``body``; an existing ``id`` returns that run.

        ``run_timeout`` (else the loop's ``run_timeout``): fail the run with ``RunTimeout``
        if it has not finished that long after now, even while it is parked.
        ``priority`` (else the loop's ``priority``, 0): higher is claimed first among
        queued runs. A loop's ``concurrency`` key is computed from the body now.

        ``debounce`` (trailing, keyed by ``debounce_key``, else by the body): the run
        starts once that long passes with no further trigger of the key; each trigger
        meanwhile replaces its body (the last wins) and returns the same run. ``dedupe``:
        a trigger of the same ``dedupe_key`` (else body) within that long of the first
        returns the first run. See docs/flow-control.md."""
        loops = self.runtime.loops
        if loop not in loops and (loops or self.runtime.runs_worker):
            known = ", ".join(sorted(loops)) or "none"
            raise LoopNotFound(f"no loop named {loop!r} in this app; known loops: {known}")
        if id is not None:
            check_run_id(id)
        text = encode(body, "the event body")
        now = self.clock.now()
        timeout_s = run_timeout_s(loops.get(loop), run_timeout)
        deadline_at = None if timeout_s is None else now + timeout_s
        run_id = id or new_run_id()
        # the run's trace: a child of the span current here, if tracing is on
        parent = tracing.trigger_parent(self._org, run_id, loop) if tracing.ENABLED else None
        flow = trigger_flow(loops.get(loop), loop, run_id, body, now, priority)
        window = trigger_window(loop, text, debounce, debounce_key, dedupe, dedupe_key)
        if window is None:
            record, _ = await self._store.create_run(
                self._org, run_id, loop, text, now, deadline_at, parent,
                priority=flow.priority, flow_key=flow.key, flow_limit=flow.limit,
            )  # fmt: skip
        else:
            record, _ = await self._store.create_run_windowed(
                self._org, run_id, loop, lambda _: text, now, window, deadline_at, parent,
                priority=flow.priority, flow_key=flow.key, flow_limit=flow.limit,
            )  # fmt: skip
            self.runtime.timers_changed()  # a debounced run starts on a timer
        self.runtime.notify_work()
        if deadline_at is not None:
            self.runtime.timers_changed()
        return build_run(record)

    async def get_run(self, run_id: str) -> Run:
        """The run with its step timeline (RunNotFound if it is not in this org)."""
        detail = await self._store.get_run_detail(self._org, run_id)
        if detail is None:
            raise _not_found(run_id)
        return build_run(detail.run, detail.steps, detail.attempts, detail.waits)

    async def run_family(self, run_id: str) -> RunFamily:
        """The run's parent (if a ``step.run_loop`` started it) and every run it started,
        at any depth, oldest first (RunNotFound if it is not in this org)."""
        family = await self._store.run_family(self._org, run_id)
        if family is None:
            raise _not_found(run_id)
        return family

    async def list_runs(
        self, *, loop: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[Run]:
        """Newest runs first (without their steps)."""
        records = await self._store.list_runs(self._org, loop=loop, status=status, limit=limit)
        return [build_run(r) for r in records]

    async def run_records(
        self,
        *,
        loop: str | None = None,
        status: str | None = None,
        limit: int = 50,
        before: float | None = None,
        before_id: str | None = None,
        since: float | None = None,
    ) -> list[RunRecord]:
        """Stored runs, newest first, paged by ``(before, before_id)`` as
        :meth:`pulseloop.store.protocols.RunStore.list_runs` describes (the API's cursor)."""
        return await self._store.list_runs(
            self._org, loop=loop, status=status, limit=limit, before=before,
            before_id=before_id, since=since,
        )  # fmt: skip

    async def run_record(self, run_id: str) -> RunRecord | None:
        """The run's stored row (its generation, key), or None if not in this org."""
        return await self._store.get_run(self._org, run_id)

    async def wait_for_run(self, run_id: str, timeout: Duration | None = None) -> Run:
        """Wait until the run is completed, failed or cancelled; return it.

        Raises TimeoutError if ``timeout`` (real time) passes first.
        """
        limit = None if timeout is None else duration_seconds(timeout)
        poll_s = _SETTLE_POLL_S
        try:
            async with asyncio.timeout(limit):
                while True:
                    event = self.runtime.settled_event(run_id)
                    event.clear()
                    status = await self._store.run_status(self._org, run_id)  # cheap poll
                    if status is None:
                        raise _not_found(run_id)
                    if status in TERMINAL_STATUSES:
                        return await self.get_run(run_id)
                    # this process's worker settles the event at once; polling (backing
                    # off) covers runs executed by a worker in another process
                    await wait_event(event, poll_s)
                    poll_s = min(poll_s * 2, _SETTLE_POLL_MAX_S)
        except TimeoutError:
            raise TimeoutError(
                f"run {run_id!r} did not finish within {timeout}; it keeps running, "
                "wait again or inspect it with get_run"
            ) from None

    async def send_event(self, run_id: str, type: str, payload: Any = None) -> None:
        """Deliver an event to ``step.wait_for_event(type=...)`` of the run (buffered)."""
        text = encode(payload, f"the payload of event {type!r}")
        if not await self._store.send_signal(
            self._org, run_id, f"event:{type}", text, self.clock.now()
        ):
            raise _not_found(run_id)
        self.runtime.notify_work()

    # operators -------------------------------------------------------------------------
    async def cancel(self, run_id: str) -> Run:
        """Cancel an unfinished run; a step in flight is abandoned, nothing more runs."""
        record = await self._store.cancel_run(self._org, run_id, self.clock.now())
        self.runtime.abort(record.key)
        return build_run(record)

    async def pause(self, run_id: str) -> Run:
        """Pause a run; a running one stops after its current step is recorded."""
        return build_run(await self._store.pause_run(self._org, run_id, self.clock.now()))

    async def resume(self, run_id: str) -> Run:
        """Resume a paused run."""
        record = await self._store.resume_run(self._org, run_id, self.clock.now(), time.time())
        self.runtime.notify_work()
        return build_run(record)

    async def retry(self, run_id: str) -> Run:
        """Re-run a failed run: finished steps replay, failed ones run again."""
        record = await self._store.retry_run(self._org, run_id, self.clock.now())
        self.runtime.notify_work()
        return build_run(record)

    async def restart(self, run_id: str, from_step: str) -> Run:
        """Forget ``from_step`` and everything after it, and run on from there."""
        record = await self._store.restart_run(self._org, run_id, from_step, self.clock.now())
        self.runtime.abort(record.key)
        self.runtime.notify_work()
        return build_run(record)

    async def deploys(self) -> list[Deploy]:
        """Every loop version a worker of this organization served, newest first."""
        return [build_deploy(d) for d in await self._store.list_deploys(self._org)]

    # scans -----------------------------------------------------------------------------
    async def get_scan(self, scan_id: str) -> ScanRecord | None:
        """A scan of this organization by id, or None."""
        return await self._store.get_scan(self._org, scan_id)

    async def latest_scan(self, run_id: str) -> ScanRecord | None:
        """The run's most recently provisioned scan, or None."""
        return await self._store.latest_scan(self._org, run_id)

    # the audit trail -------------------------------------------------------------------
    async def audit_rows(
        self,
        *,
        object_kind: str | None = None,
        object_id: str | None = None,
        since: float | None = None,
        before: float | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[AuditRecord]:
        """This organization's audit rows, newest first, filtered; ``before_seq``
        continues a page (``/v1/audit``, the dashboard's audit page)."""
        return await self.runtime.store.audit.rows(
            self._org, object_kind=object_kind, object_id=object_id, since=since,
            before=before, before_seq=before_seq, limit=limit,
        )  # fmt: skip

    # webhooks --------------------------------------------------------
    @property
    def webhooks(self) -> Webhooks:
        """This organization's webhook endpoints and delivery log (see
        :class:`~pulseloop.webhooks.Webhooks`)."""
        from pulseloop.webhooks.endpoints import Webhooks

        return Webhooks(self)

    async def record(self, action: AuditAction, kind: str, object_id: str) -> None:
        """Note an action in the audit trail: nothing here; the HTTP layer's
        :class:`~pulseloop.audited.AuditedClient` writes a row."""


def _not_found(run_id: str) -> RunNotFound:
    return RunNotFound(f"no run {run_id!r} in this organization; check the id")


def new_run_id() -> str:
    """A fresh run id: 32 hex digits, the creation time in milliseconds then 80 random bits.

    Time first, so a new run's rows (its run row, its steps, signals and waits, all keyed
    by it) land beside the previous run's in every index instead of on a random page each:
    with random ids every step of a busy worker dirtied its own page of a large table, and
    commits grew with history.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def check_run_id(run_id: object) -> str:
    """``run_id`` if it may name a run: 1-200 characters of :data:`RUN_ID_CHARS`, not only
    dots (``.`` and ``..`` are path segments); :class:`InvalidRunId` otherwise."""
    if isinstance(run_id, str) and _RUN_ID.fullmatch(run_id) and run_id.strip("."):
        return run_id
    if not isinstance(run_id, str):
        shown = f"{run_id!r} (a {type(run_id).__name__}, not a string)"
    elif len(run_id) > MAX_RUN_ID_CHARS:
        shown = f"{run_id[:40]!r}... ({len(run_id)} characters)"
    else:
        shown = repr(run_id)
    raise InvalidRunId(
        f"run id {shown} is not allowed: use 1 to {MAX_RUN_ID_CHARS} characters from "
        f"{RUN_ID_CHARS} (letters and digits are ASCII only; no '/', spaces or other "
        "characters; not only dots)"
    )
