"""Executing one run: replay from the top, checkpoint new steps, suspend on waits.

Design record. A run is re-executed from the top of ``run()`` every time it is claimed;
completed steps return their stored result instead of running, so code between steps
re-runs and only steps are checkpointed (DESIGN.md). Considered and rejected:

* keeping a parked run's coroutine alive (Cloudflare's local engine, asyncio frames):
  costs memory per waiting run and dies with the process;
* replaying by position (DBOS): a loop edited between deploys shifts every later step.
  Names are the replay key, so a renamed step simply runs and an added one is new.

A step never moves forward before its record is committed: ``record_step`` returns only
after the group commit that holds it. Every write is fenced by the worker's lease.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from types import CodeType
from typing import Any, Protocol

from pulseloop import errors
from pulseloop.durations import Duration, duration_seconds
from pulseloop.engine import children, logcontext, tracing
from pulseloop.engine.clock import Clock
from pulseloop.engine.codec import decode, encode, round_trip
from pulseloop.engine.context import ConnectorFactory, StepCtx, StepScope
from pulseloop.engine.fanout import counted, settle
from pulseloop.engine.flow import RateLimit
from pulseloop.engine.loop import MAX_SUMMARY_CHARS, Event, Loop
from pulseloop.engine.retries import DEFAULT_TIMEOUT, Retries, as_retries
from pulseloop.engine.suspend import Interrupted, Suspend
from pulseloop.store.base import (
    AttemptRecord,
    History,
    Lease,
    LeaseLost,
    RunRecord,
    StepRecord,
    WaitRecord,
    scan_signal_key,
)
from pulseloop.store.protocols import (
    ChildRuns,
    RateLimits,
    RunDeadlines,
    ScanReads,
    ScheduleStore,
    TimerPass,
    WorkerStore,
)

log = logging.getLogger(__name__)

MAX_STEPS = 10_000
"""Steps (and waits) per run."""
MAX_WAIT_S = 365 * 86400.0
"""Longest sleep or wait."""

# Errors a failed step record re-raises as themselves (not wrapped in StepFailed), so
# the first run and every replay raise the same type.
_REPLAYED_AS_ITSELF: dict[str, type[errors.PulseloopError]] = {
    cls.__name__: cls
    for cls in (errors.NotSerializable, errors.LimitExceeded, errors.WaitTimeout,
                errors.ScanTimeout)
}  # fmt: skip
_DETERMINISTIC = (errors.NotSerializable, errors.LimitExceeded)

_WANTS_CTX: dict[CodeType, bool] = {}


def wants_ctx(fn: Callable[..., Any]) -> bool:
    """Whether a step callback takes the ``ctx`` argument (cached per code object)."""
    code = getattr(fn, "__code__", None)
    if code is not None and code in _WANTS_CTX:
        return _WANTS_CTX[code]
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    # ``lambda i=i: ...`` (a default-bound loop variable) must not receive ctx as ``i``
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    answer = any(
        p.kind == p.VAR_POSITIONAL
        or (p.kind in positional and (p.default is p.empty or p.name == "ctx"))
        for p in params
    )
    if code is not None:
        _WANTS_CTX[code] = answer
    return answer


class EngineStore(
    WorkerStore,
    ScanReads,
    ScheduleStore,
    RunDeadlines,
    ChildRuns,
    TimerPass,
    RateLimits,
    Protocol,
):
    """All the engine asks of storage: the worker's side, reading a run's latest scan
    (what ``wait_for_scan`` listens for), the timer pass's schedules and run deadlines,
    and starting child runs. No operator action, no organization."""


class Services:
    """What executions share within one worker."""

    def __init__(
        self,
        store: EngineStore,
        clock: Clock,
        worker_id: str,
        connectors: Mapping[str, ConnectorFactory],
        connector_services: Any,
        on_park: Callable[[float | None], None],
    ) -> None:
        self.store = store
        self.clock = clock
        self.worker_id = worker_id
        self.connectors = connectors
        self.connector_services = connector_services
        self.on_park = on_park
        self.run_timeouts: Mapping[str, float] = {}
        """Served loops' run timeouts in seconds (a child run's deadline)."""
        self.served: frozenset[str] | None = None
        """The loop names served (``run_loop`` refuses others); None: not checked."""


class Execution:
    """One pass of one run through its loop's ``run()``."""

    def __init__(
        self, services: Services, run: RunRecord, history: History, loop: type[Loop], version: str
    ) -> None:
        self.services = services
        self.run = run
        self.history = history
        self.loop = loop
        self.version = version
        self.lease = Lease(run.key, services.worker_id, run.org)  # history is keyed by run.key
        self._names: set[str] = set()
        self._wake_ats: list[float] = []
        self._keys: list[str] = []
        self._suspended = False
        self._fatal: BaseException | None = None
        self._scan_waits = 0
        self.busy = 0  # step calls in flight, idle and closed: see engine/fanout.py
        self.idle = asyncio.Event()
        self.closed = False

    # the run as a whole -------------------------------------------------------------
    async def execute(self) -> str:
        """Run ``run()`` once; return the status the run was left in."""
        token = logcontext.RUN.set(self.run)  # log records name the run (logcontext.py)
        try:
            if tracing.ENABLED:
                return await tracing.run_pass(self.run, self._execute())
            return await self._execute()
        finally:
            logcontext.RUN.reset(token)

    async def _execute(self) -> str:
        from pulseloop.engine.step import Step

        store, clock = self.services.store, self.services.clock
        event = Event(
            id=self.run.id,
            body=decode(self.run.input),
            received_at=datetime.fromtimestamp(self.run.created_at, UTC),
        )
        loop = self.loop()
        try:
            try:
                output = await self._settled(loop.run(event, Step(self)))
                if self._suspended:  # user code swallowed a Suspend: park anyway
                    raise Suspend()
                if self._fatal is not None:
                    raise self._fatal
                text = encode(output, f"the return value of loop {self.run.loop!r}")
            except (Suspend, Interrupted, LeaseLost, asyncio.CancelledError):
                raise
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    raise
                await store.finish_run(self.lease, "failed", None, _run_error(exc), clock.now())
                return "failed"
            await self._record_summary(loop, event, output)
            await store.finish_run(self.lease, "completed", text, None, clock.now())
            return "completed"
        except Suspend:
            await self._record_summary(loop, event, None)
            wake_at = min(self._wake_ats) if self._wake_ats else None
            if tracing.ENABLED:
                tracing.parked(wake_at, self._keys)
            status = await store.park_run(self.lease, wake_at, self._keys, clock.now())
            self.services.on_park(wake_at)
            return status
        except Interrupted:
            await store.release_run(self.lease, clock.now())
            return "paused"
        except LeaseLost:
            return "lost"

    async def _record_summary(self, loop: Loop, event: Event, output: Any) -> None:
        """Store the loop's summary line if it changed (usually twice in a run's life)."""
        try:
            line = loop.summary(event, output)
        except Exception:
            log.warning("summary() of loop %r raised; the run's list line stays as it was",
                        self.run.loop, exc_info=True)  # fmt: skip
            return
        if line is not None:
            line = str(line)[:MAX_SUMMARY_CHARS]
        if line != self.run.summary:
            await self.services.store.record_summary(self.lease, line, self.services.clock.now())

    def _use_name(self, name: str) -> int:
        """Claim ``name`` for this execution; return its sequence number."""
        if not isinstance(name, str) or not name:
            raise errors.PulseloopError(f"step name {name!r} must be a non-empty string")
        if name in self._names:
            error = errors.DuplicateStepName(name)
            self._fatal = error  # the run fails even if the caller catches it
            raise error
        if len(self._names) >= MAX_STEPS:
            error_ = errors.LimitExceeded(
                f"run {self.run.id!r} reached {MAX_STEPS:,} steps at step {name!r}; split the "
                "work across runs (trigger a new run from a step) or batch items per step"
            )
            self._fatal = error_
            raise error_
        self._names.add(name)
        return len(self._names)

    def _suspend(self, wake_at: float | None, key: str | None = None) -> Suspend:
        if wake_at is not None:
            self._wake_ats.append(wake_at)
        if key is not None:
            self._keys.append(key)
        self._suspended = True
        return Suspend()

    async def _record(self, step: StepRecord, consume: int | None = None) -> None:
        status = await self.services.store.record_step(self.lease, step, consume)
        self.history.steps[step.name] = step
        if status == "paused":
            raise Interrupted()

    # step.do --------------------------------------------------------------------------
    @counted
    async def do(
        self,
        name: str,
        fn: Callable[..., Any],
        retries: Retries | Mapping[str, Any] | int | None,
        timeout: Duration | None,
        rate: RateLimit | None = None,
    ) -> Any:
        """Return the step's recorded result, or run it (with retries) and record it."""
        seq = self._use_name(name)
        recorded = self.history.steps.get(name)
        if recorded is not None:
            if tracing.ENABLED:
                tracing.replayed(name, recorded.kind)
            return _replay(recorded)
        if not callable(fn):
            raise errors.PulseloopError(f"step {name!r}: {fn!r} is not callable; pass a function")
        policy = as_retries(retries)
        timeout_s = duration_seconds(DEFAULT_TIMEOUT if timeout is None else timeout)
        clock = self.services.clock
        failed, retry_at = self.history.failures.get(name, (0, None))
        started = clock.now()
        if failed and retry_at is not None and retry_at > started:
            raise self._suspend(retry_at)
        if rate is not None:  # no permit: park until one frees, holding no worker
            free_at = await self.services.store.take_permit(
                self.run.org, rate.digest, rate.count, rate.period_s, started
            )
            if free_at is not None:
                raise self._suspend(max(free_at, started))
        attempt = failed + 1
        scope = StepScope(
            self.run.org, self.run.id, name, attempt, self.services.connector_services
        )
        ctx = StepCtx(scope, self.services.connectors)
        logged = logcontext.STEP.set(scope)  # log records name the step (logcontext.py)
        span = tracing.attempt_started(self.run, name, attempt) if tracing.ENABLED else None
        try:
            value = await self._invoke(fn, ctx, timeout_s, name)
            result, text = round_trip(value, f"the result of step {name!r}")
        except BaseException as exc:
            if span is not None:
                tracing.attempt_ended(span, exc)
            if not isinstance(exc, Exception):
                raise
            ctx.close()
            await self._failed(name, seq, attempt, started, exc, policy)
            raise AssertionError("unreachable") from exc
        finally:
            logcontext.STEP.reset(logged)
        if span is not None:
            tracing.attempt_ended(span, None)
        ctx.close()
        finished = clock.now()
        await self._record(
            StepRecord(self.run.key, name, seq, "do", "completed", text, None, attempt, started,
                       finished, self.version),
        )  # fmt: skip
        return result

    async def _invoke(
        self, fn: Callable[..., Any], ctx: StepCtx, timeout_s: float, name: str
    ) -> Any:
        args = (ctx,) if wants_ctx(fn) else ()
        deadline = self.services.clock.timeout(timeout_s)
        try:
            async with deadline:
                if inspect.iscoroutinefunction(fn):
                    result = await fn(*args)
                else:  # sync code runs off the event loop; other runs keep moving
                    result = await asyncio.to_thread(fn, *args)
                while inspect.isawaitable(result):
                    result = await result
                return result
        except TimeoutError as exc:
            if getattr(deadline, "expired", lambda: False)():
                raise errors.StepTimeout(
                    f"step {name!r} ran longer than its timeout of {timeout_s:g} s; raise "
                    "timeout= on step.do or make the work shorter"
                ) from exc
            raise

    async def _failed(
        self, name: str, seq: int, attempt: int, started: float, exc: Exception, policy: Retries
    ) -> None:
        """Record a failed attempt; park for the retry or fail the step for good."""
        finished = self.services.clock.now()
        info = _step_error(exc)
        retry = not isinstance(exc, _DETERMINISTIC) and policy.should_retry(exc, attempt)
        if retry:
            retry_at = finished + policy.delay_s(attempt)
            if tracing.ENABLED:
                tracing.retrying(name, attempt, retry_at)
            record = AttemptRecord(
                self.run.key, name, self.run.generation, attempt, "failed", started, finished,
                info, retry_at, self.version, self.services.worker_id,
            )  # fmt: skip
            status = await self.services.store.record_failed_attempt(self.lease, record)
            if status == "paused":
                raise Interrupted()
            raise self._suspend(retry_at)
        step = StepRecord(
            self.run.key, name, seq, "do", "failed", None, info, attempt, started, finished,
            self.version,
        )  # fmt: skip
        await self._record(step)
        raise _failure(step) from exc

    # durable waits ---------------------------------------------------------------------
    def next_scan_wait_name(self) -> str:
        """Scan waits have no user-given name: the n-th in the run is ``wait for scan #n``."""
        self._scan_waits += 1
        return f"wait for scan #{self._scan_waits}"

    async def scan_wait_key(self, name: str) -> str | None:
        """The signal a scan wait listens for: fixed when first reached (the run's latest
        scan then), read back from the stored wait on replay."""
        if name in self.history.steps:
            return None
        pending = self.history.waits.get(name)
        if pending is not None:
            return pending.key
        scan = await self.services.store.latest_scan(self.run.org, self.run.id)
        if scan is None:
            raise errors.NoScanProvisioned(
                "wait_for_scan was reached but no earlier step of this run provisioned a "
                "scan; call ctx.FACIAL_SCAN.create in a step.do before waiting"
            )
        return scan_signal_key(scan.id)

    @counted
    async def wait(
        self,
        name: str,
        kind: str,
        key: str | None,
        timeout: Duration | None,
        on_timeout: Callable[[], errors.PulseloopError] | None,
        deadline_at: float | None = None,
    ) -> Any:
        """Wait durably for a signal on ``key`` (or, with no key, until the deadline).

        The deadline is fixed the first time the wait is reached and stored; replays read
        it back. A signal that arrived before the wait was reached is consumed here.
        """
        seq = self._use_name(name)
        recorded = self.history.steps.get(name)
        if recorded is not None:
            if tracing.ENABLED:
                tracing.replayed(name, recorded.kind)
            return _replay(recorded)
        now = self.services.clock.now()
        if deadline_at is None and timeout is not None:
            seconds = duration_seconds(timeout)
            if seconds > MAX_WAIT_S:
                raise errors.LimitExceeded(
                    f"{kind} {name!r} lasts {seconds:,.0f} s, over the 365-day limit; "
                    "use a shorter duration"
                )
            deadline_at = now + seconds
        wait = self.history.waits.get(name)
        signal = None
        if wait is None or key is not None:
            fresh = WaitRecord(self.run.key, name, seq, kind, key, deadline_at, now)
            wait, signal = await self.services.store.open_wait(self.lease, fresh)
            self.history.waits[name] = wait

        def resolved(status: str, output: str | None, error: dict[str, Any] | None) -> StepRecord:
            if tracing.ENABLED:
                tracing.wait_resolved(name, kind, status)
            return StepRecord(self.run.key, name, seq, kind, status, output, error, 1,
                              wait.created_at, now, self.version)  # fmt: skip

        if signal is not None:
            await self._record(resolved("completed", signal.payload, None), signal.id)
            return decode(signal.payload)
        if wait.deadline_at is not None and wait.deadline_at <= now:
            if on_timeout is None:  # a sleep that is over
                await self._record(resolved("completed", None, None))
                return None
            error = on_timeout()
            await self._record(resolved("failed", None, errors.error_info(error)))
            raise error
        if tracing.ENABLED:
            tracing.waiting(name, kind, key, wait.deadline_at)
        raise self._suspend(wait.deadline_at, key)

    # child loops and concurrent steps (engine/children.py, engine/fanout.py) ---------
    @counted
    async def run_loop(
        self, name: str, loop: str | type[Loop], body: Any, timeout: Duration | None
    ) -> Any:
        """Start the child run of step ``name`` (once), park until it ends, return its
        output (see :mod:`pulseloop.engine.children`)."""
        return await children.run_loop(self, name, loop, body, timeout)

    async def _settled(self, running: Awaitable[Any]) -> Any:
        """Await ``run()``, then every step call its branches still have in flight."""
        try:
            return await running
        except (LeaseLost, asyncio.CancelledError):
            self.closed = True  # nothing more may be written; do not wait for branches
            raise
        finally:
            if not self.closed:
                await settle(self)


def _replay(step: StepRecord) -> Any:
    if step.status == "completed":
        return decode(step.output)
    raise _failure(step)


def _failure(step: StepRecord) -> errors.PulseloopError:
    info = step.error or {}
    kind, message = str(info.get("type", "Exception")), str(info.get("message", ""))
    replayed = _REPLAYED_AS_ITSELF.get(kind)
    if replayed is not None:
        return replayed(message)
    return errors.StepFailed(step.name, kind, message, step.attempts)


def _step_error(exc: BaseException) -> dict[str, Any]:
    info = errors.error_info(exc)
    info["traceback"] = "".join(traceback.format_exception(exc))[-4000:]
    return info


def _run_error(exc: BaseException) -> dict[str, Any]:
    info = _step_error(exc)
    if isinstance(exc, errors.StepFailed):
        info["step"] = exc.step
    return info
