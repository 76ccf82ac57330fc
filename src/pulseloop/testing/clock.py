"""A clock that moves only when told, so tests never sleep for a timer to pass."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from datetime import timedelta

from pulseloop.durations import Duration, duration_seconds


class FakeClock:
    """Workflow time under test control: ``await clock.advance("10 minutes")``.

    Sleepers and timeouts registered on it fire when :meth:`advance` moves past their
    deadline. Pass it as ``App(..., clock=FakeClock())``.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._order = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._timeouts: list[tuple[float, int, asyncio.Timeout]] = []

    def now(self) -> float:
        """The current fake time (epoch seconds)."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Return once the clock has been advanced by ``seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    def timeout(self, seconds: float) -> asyncio.Timeout:
        """An ``asyncio.timeout`` that expires when the clock passes ``seconds`` from now."""
        cm = asyncio.timeout(None)
        heapq.heappush(self._timeouts, (self._now + seconds, next(self._order), cm))
        return cm

    async def advance(self, by: Duration | timedelta) -> None:
        """Move time forward, wake what is due, and let the event loop react."""
        self._now += duration_seconds(by)
        loop = asyncio.get_running_loop()
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        while self._timeouts and self._timeouts[0][0] <= self._now:
            _, _, cm = heapq.heappop(self._timeouts)
            if cm.when() is None and not cm.expired():
                # not entered yet, or already left: nothing to expire
                with contextlib.suppress(AssertionError, RuntimeError):
                    cm.reschedule(loop.time())
        for _ in range(3):
            await asyncio.sleep(0)
