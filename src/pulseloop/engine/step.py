"""``step``: the second argument of ``run()`` — checkpointed work and durable waits.

Python spells the spec in snake_case; the spec's camelCase names are aliases
(``waitForScan``, ``sleepUntil``, ``waitForEvent``) so ported code reads the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pulseloop import errors
from pulseloop.durations import Duration
from pulseloop.engine.flow import RateLimit

if TYPE_CHECKING:
    from pulseloop.engine.execution import Execution
    from pulseloop.engine.loop import Loop
    from pulseloop.engine.retries import Retries

DEFAULT_EVENT_TIMEOUT: Duration = "24 hours"


class Step:
    """Checkpointed steps and durable waits for one run. Given to ``run()``; never built."""

    __slots__ = ("_execution",)

    def __init__(self, execution: Execution) -> None:
        self._execution = execution

    async def do(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        retries: Retries | Mapping[str, Any] | int | None = None,
        timeout: Duration | None = None,
        rate: RateLimit | None = None,
    ) -> Any:
        """Run ``fn`` as the named, checkpointed step ``name`` and return its result.

        ``fn`` may take ``ctx`` or nothing, be sync (run in a thread) or async, and may
        return an awaitable. Its result must be JSON; it comes back after a JSON round
        trip, on the first run and on every replay alike. A step that already succeeded
        in this run returns its stored result without calling ``fn``. Failures are
        retried per ``retries`` (default: 5 retries, 10 s exponential) with each attempt
        limited by ``timeout`` (default 10 minutes); the final failure raises
        :class:`~pulseloop.errors.StepFailed`. ``rate`` (a
        :class:`~pulseloop.RateLimit`): take a permit before each attempt; with none free
        the run parks until one frees, holding no worker.
        """
        if rate is not None and not isinstance(rate, RateLimit):
            raise errors.InvalidFlowControl(
                f'step {name!r}: rate={rate!r} must be a RateLimit("10/second", key="sms")',
                field="rate",
            )
        return await self._execution.do(name, fn, retries, timeout, rate)

    async def sleep(self, name: str, duration: Duration) -> None:
        """Park the run for ``duration`` (up to 365 days), holding no worker meanwhile."""
        await self._execution.wait(name, "sleep", None, duration, None)

    async def sleep_until(self, name: str, when: datetime) -> None:
        """Park the run until ``when`` (a timezone-aware datetime)."""
        if not isinstance(when, datetime) or when.tzinfo is None:
            raise errors.PulseloopError(
                f"sleep_until {name!r}: {when!r} must be a timezone-aware datetime "
                "(e.g. datetime(..., tzinfo=UTC))"
            )
        now = self._execution.services.clock.now()
        if when.timestamp() - now > 365 * 86400:
            raise errors.LimitExceeded(
                f"sleep_until {name!r} targets {when.isoformat()}, over 365 days ahead"
            )
        await self._execution.wait(name, "sleep", None, None, None, deadline_at=when.timestamp())

    async def wait_for_event(
        self, name: str, *, type: str, timeout: Duration = DEFAULT_EVENT_TIMEOUT
    ) -> Any:
        """Park until an event of ``type`` is sent to this run; return its payload.

        Events sent before the wait is reached are buffered, never missed. Raises
        :class:`~pulseloop.errors.WaitTimeout` if ``timeout`` passes first.
        """
        if not isinstance(type, str) or not type:
            raise errors.PulseloopError(f"wait_for_event {name!r}: type {type!r} must be a string")

        def timed_out() -> errors.PulseloopError:
            return errors.WaitTimeout(
                f"no {type!r} event reached wait {name!r} within {timeout}; catch WaitTimeout "
                "to handle it, or raise the timeout"
            )

        return await self._execution.wait(name, "event", f"event:{type}", timeout, timed_out)

    async def wait_for_scan(
        self, options: Mapping[str, Any] | None = None, *, timeout: Duration | None = None
    ) -> Any:
        """Park until the scan provisioned by an earlier step (the latest) finishes.

        Returns the scan payload (``id``, ``status``, ``metadata`` echoed back, ``vitals``,
        ``quality``, ``failure_reason``, timestamps) once it is completed, failed or
        expired. A scan that finished before this line is reached is returned at once.
        Raises :class:`~pulseloop.errors.ScanTimeout` if ``timeout`` passes first (the
        deadline is fixed when the wait is first reached), and
        :class:`~pulseloop.errors.NoScanProvisioned` if no scan was made. The spec's
        spelling ``waitForScan({"timeout": "30 minutes"})`` works too.
        """
        if options is not None:
            timeout = options.get("timeout", timeout)
        if timeout is None:
            raise errors.PulseloopError(
                'wait_for_scan needs a timeout, e.g. wait_for_scan(timeout="30 minutes")'
            )
        execution = self._execution
        name = execution.next_scan_wait_name()
        key = await execution.scan_wait_key(name)

        def timed_out() -> errors.PulseloopError:
            return errors.ScanTimeout(
                f"the scan was not finished within {timeout}; catch ScanTimeout to remind the "
                "patient or provision a new scan"
            )

        return await execution.wait(name, "scan", key, timeout, timed_out)

    async def run_loop(
        self,
        name: str,
        loop: str | type[Loop],
        body: Any = None,
        *,
        timeout: Duration | None = None,
    ) -> Any:
        """Run ``loop`` (its name or class) as a child run with ``body``; return its output.

        The child is started once per step ``name`` (crashes and replays find the same
        child, ``<this run's id>~<name>``), in this run's organization; this run parks,
        holding no worker, until it ends. A child that fails, is cancelled or passes its
        deadline raises :class:`~pulseloop.errors.ChildLoopFailed` here. ``timeout``
        bounds the wait (:class:`~pulseloop.errors.WaitTimeout`; the child runs on until
        this run ends). Several children at once: ``asyncio.gather(step.run_loop(...),
        ...)``. Children never outlive this run: when it ends they are cancelled.
        """
        return await self._execution.run_loop(name, loop, body, timeout)

    # the spec's camelCase names
    sleepUntil = sleep_until
    waitForEvent = wait_for_event
    waitForScan = wait_for_scan
    runLoop = run_loop
