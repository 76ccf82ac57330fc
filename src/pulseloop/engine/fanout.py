"""Concurrent steps in one run (``asyncio.gather`` of steps or child loops).

Design record. ``gather`` hands its first exception to the run at once and lets the other
branches go on: when one branch parks (a ``Suspend``), its siblings may still be starting
their children or recording their steps. Parking then would drop their wait keys (the
run would not hear their children end) and let their writes race the park. So every step
call is counted (:func:`counted`); the execution, once ``run()`` has returned or raised,
waits until no step call is in flight (``settle``) and only then parks or finishes, with
every branch's keys. Calls that start after that are refused with ``Suspend`` without
touching the store: the next replay runs them. Considered: cancelling the siblings (a
step's callback would be cut mid-way and re-run), and parking per branch (a run has one
row, one status).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from pulseloop.engine.suspend import Suspend


class InFlight(Protocol):
    """What :func:`counted` keeps on an execution."""

    busy: int
    idle: asyncio.Event
    closed: bool


P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S", bound=InFlight)


def counted(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Count the step call while it runs; refuse it once the execution has settled."""

    @functools.wraps(method)
    async def call(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self.closed:  # a branch left running after the run parked or ended
            raise Suspend()
        self.busy += 1
        try:
            return await method(self, *args, **kwargs)
        finally:
            self.busy -= 1
            if not self.busy:
                self.idle.set()

    return call


async def settle(execution: InFlight) -> None:
    """Wait until no step call is in flight, then refuse new ones."""
    while execution.busy:
        execution.idle.clear()
        await execution.idle.wait()
    execution.closed = True
