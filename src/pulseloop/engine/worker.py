"""The worker: claims runs, executes them concurrently, fires timers, keeps leases.

Design record. Three small loops on one event loop:

* **claim**: while there is capacity, claim queued runs (or runs whose lease expired:
  their worker died) and start an :class:`Execution` task for each. Woken at once by
  in-process events (trigger, timer fired, signal, a run finished), and by polling for
  work other processes queued.
* **timers**: sleeps, retry delays and wait deadlines are ``wake_at`` on parked rows, and
  schedules have a ``next_fire_at``; this loop sleeps (on the workflow clock) until the
  earliest one, re-queues what is due, starts the runs of due schedule ticks and fails
  runs past their whole-run deadline.
* **heartbeat**: renews this worker's leases every third of the lease; runs it no longer
  holds (an operator cancelled or restarted them) are stopped without further writes.

A parked run holds nothing here: no task, no frame, no thread. Considered and rejected:
one asyncio timer per parked run (memory grows with parked runs; lost on restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pulseloop.background import wait_event
from pulseloop.engine import logcontext
from pulseloop.engine.clock import Clock
from pulseloop.engine.context import ConnectorFactory
from pulseloop.engine.deadlines import TIMEOUT_ERROR, timeouts
from pulseloop.engine.execution import EngineStore, Execution, Services
from pulseloop.engine.loop import Loop, loop_version
from pulseloop.engine.schedules import FIRE_BATCH, planner, sync_declared
from pulseloop.store.base import (
    History,
    InlineCommits,
    Lease,
    RunRecord,
)

log = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class _Passes:
    """One worker loop's passes: how many began and finished, and what the last one found
    to do (timers fired; runs executing or claimed)."""

    begun: int = 0
    finished: int = 0
    found: int = 0


class Worker:
    """Executes the runs of one organization's loops."""

    def __init__(
        self,
        store: EngineStore,
        loops: Mapping[str, type[Loop]],
        *,
        org: str,
        clock: Clock,
        concurrency: int = 100,
        lease_s: float = 10.0,
        poll_s: float = 0.5,
        connectors: Mapping[str, ConnectorFactory] | None = None,
        connector_services: Any = None,
        only_run: str | None = None,
        on_settled: Callable[[str, str], None] | None = None,
    ) -> None:
        self.id = f"w-{uuid.uuid4().hex[:12]}"
        self.store = store
        self.loops = dict(loops)
        self.versions = {name: loop_version(cls) for name, cls in self.loops.items()}
        self._timeouts = timeouts(self.loops)
        self.org = org
        self.clock = clock
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.only_run = only_run
        self.on_settled = on_settled
        self.services = Services(
            store, clock, self.id, connectors or {}, connector_services, self._on_park
        )
        self.services.run_timeouts = self._timeouts  # a child run's deadline
        self.services.served = frozenset(self.loops)
        self._active: dict[str, asyncio.Task[str]] = {}
        self._kick = asyncio.Event()
        self._timer_kick = asyncio.Event()
        self._loops: list[asyncio.Task[Any]] = []
        # for idle(): each loop's passes, and callers waiting for one to finish (none on the
        # hot path, so a pass costs two counter updates)
        self._passes = {"claim": _Passes(), "timers": _Passes()}
        self._pass_waiters: list[asyncio.Future[None]] = []

    async def start(self) -> None:
        """Record the deploy, prove this process alive, take over dead workers' runs, and
        start claiming."""
        logcontext.install()  # log records made in runs name them (logcontext.py)
        for name, version in self.versions.items():
            await self.store.record_deploy(self.org, name, version, self.clock.now())
        await sync_declared(self.store, self.org, self.loops, self.clock.now())
        await self.store.register_worker(self.id)
        await self.store.reclaim_dead_workers(self.clock.now())
        if isinstance(self.store, InlineCommits):
            self.store.commit_inline_when(lambda: len(self._active) <= 1)
        subscribe = getattr(self.store, "subscribe_wakeups", None)
        if subscribe is not None:  # PostgreSQL: another process may have queued work
            subscribe(self.org, self.kick)
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="pulseloop-claim"),
            asyncio.create_task(self._timer_loop(), name="pulseloop-timers"),
            asyncio.create_task(self._heartbeat_loop(), name="pulseloop-heartbeat"),
        ]

    async def stop(self) -> None:
        """Stop claiming; hand back runs in flight so another worker continues them."""
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for waiter in self._pass_waiters:
            if not waiter.done():
                waiter.set_exception(RuntimeError("the worker stopped"))
        self._pass_waiters.clear()
        in_flight = list(self._active.items())
        for _, task in in_flight:
            task.cancel()
        for run_key, task in in_flight:
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(BaseException):
                await self.store.release_run(Lease(run_key, self.id), self.clock.now())
        await self.store.unregister_worker(self.id)

    def kick(self) -> None:
        """Look for work now (something was queued in this process)."""
        self._kick.set()

    def timers_changed(self) -> None:
        """Recompute the next timer (a run parked, or the clock moved)."""
        self._timer_kick.set()

    def abort(self, run_key: str) -> None:
        """Stop executing the run with key ``run_key`` at once (it was cancelled or
        restarted)."""
        task = self._active.get(run_key)
        if task is not None:
            task.cancel()

    async def idle(self) -> None:
        """Return once the worker has nothing to do: a timer pass found nothing due, then a
        claim pass found nothing queued, with no run executing, both begun after this call.

        Tests await it to show that nothing happened (after moving a FakeClock, pausing a
        run, ...) without sleeping. It never returns while runs keep becoming runnable.
        """
        while True:
            # a claim pass that began with no run executing and claimed none: no run of
            # ours can have re-queued itself after it
            if (
                await self._pass("timers", self.timers_changed) == 0
                and await self._pass("claim", self.kick) == 0
            ):
                return

    async def _pass(self, loop: str, wake: Callable[[], None]) -> int:
        """Wake ``loop`` and wait for a pass of it begun after now; what that pass found."""
        passes = self._passes[loop]
        target = passes.begun + 1
        wake()
        while passes.finished < target:
            waiter = asyncio.get_running_loop().create_future()
            self._pass_waiters.append(waiter)
            await waiter
        return passes.found

    def _passed(self, loop: str, found: int) -> None:
        passes = self._passes[loop]
        passes.finished, passes.found = passes.begun, found
        if self._pass_waiters:
            waiters, self._pass_waiters = self._pass_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    @property
    def active(self) -> int:
        """Runs executing right now."""
        return len(self._active)

    # loops -----------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        idle_polls = 0
        while True:
            self._kick.clear()  # every pass: a kick that came meanwhile is handled by it
            self._passes["claim"].begun += 1
            busy = len(self._active)
            free = self.concurrency - busy
            claimed: list[RunRecord] = []
            if free > 0:
                try:
                    claimed = await self.store.claim_runs(
                        self.org, self.id, list(self.loops), free, time.time(), self.lease_s,
                        self.clock.now(), run_id=self.only_run,
                    )  # fmt: skip
                except Exception:  # the database is away: keep polling, never stop claiming
                    log.exception("claiming runs failed; will retry")
                for run in claimed:
                    self._start(run)
            self._passed("claim", busy + len(claimed))  # idle: none was running, none claimed
            if claimed and len(claimed) == free:
                continue
            idle_polls = 0 if claimed else idle_polls + 1
            await wait_event(self._kick, self._poll_after(idle_polls))

    def _poll_after(self, idle_polls: int) -> float:
        """Adaptive poll: while wake-up hints arrive (PostgreSQL's LISTEN), an idle worker
        polls less often, up to 8x ``poll_s``; without hints it polls every ``poll_s``.
        Polling alone stays correct: a hint only makes a worker look sooner."""
        if not getattr(self.store, "hints_healthy", False):
            return self.poll_s
        return float(self.poll_s * 2 ** min(idle_polls, 3))

    async def _timer_loop(self) -> None:
        while True:
            self._timer_kick.clear()
            self._passes["timers"].begun += 1
            try:
                now = self.clock.now()
                # timers, schedule ticks and run deadlines: one store call, one transaction
                due = await self.store.timer_pass(
                    self.org, now, planner(self.org, now, self._timeouts), FIRE_BATCH, TIMEOUT_ERROR
                )
                for run_key in due.timed_out:  # executing here: stop it now, not at a heartbeat
                    self.abort(run_key)
                fired, next_at = due.fired + due.started + len(due.timed_out), due.next_at
            except Exception:  # the database is away: try again next pass
                log.exception("firing timers failed; will retry")
                fired, next_at = 0, None
            if fired:
                self.kick()
            self._passed("timers", fired)
            waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._timer_kick.wait())}
            if next_at is not None:
                delay = max(0.0, next_at - self.clock.now())
                waiters.add(asyncio.ensure_future(self.clock.sleep(delay)))
            try:
                await asyncio.wait(waiters, timeout=self.poll_s, return_when="FIRST_COMPLETED")
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:  # a worker beside this one died: its runs move now, not at lease end
                if await self.store.reclaim_dead_workers(self.clock.now()):
                    self.kick()
            except Exception:
                log.exception("looking for dead workers failed; will retry")
            if not self._active:
                continue
            try:
                lost = await self.store.renew_leases(
                    self.id, list(self._active), time.time(), self.lease_s
                )
            except Exception:
                log.exception("lease renewal failed; will retry")
                continue
            for run_id in lost:
                self.abort(run_id)

    # executions ------------------------------------------------------------------------
    def _start(self, run: RunRecord) -> None:
        task = asyncio.create_task(self._execute(run), name=f"pulseloop-run-{run.id}")
        self._active[run.key] = task  # by key, like its lease and what renewal reports
        task.add_done_callback(functools.partial(self._finished, run.key, run.id))

    async def _execute(self, run: RunRecord) -> str:
        history = (
            await self.store.load_history(run.key, run.generation) if run.history_len else History()
        )
        execution = Execution(
            self.services, run, history, self.loops[run.loop], self.versions[run.loop]
        )
        return await execution.execute()

    def _finished(self, run_key: str, run_id: str, task: asyncio.Task[str]) -> None:
        self._active.pop(run_key, None)
        self.kick()
        if task.cancelled():
            status = "aborted"
        elif task.exception() is not None:
            status = "crashed"
            log.error("run %s crashed in the engine", run_id, exc_info=task.exception())
        else:
            status = task.result()
        if status == "queued":
            self.kick()
        if self.on_settled is not None:
            self.on_settled(run_id, status)

    def _on_park(self, wake_at: float | None) -> None:
        if wake_at is not None:
            self.timers_changed()
