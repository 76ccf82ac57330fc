"""Where workflow time comes from.

Sleeps, retry delays, wait deadlines and step timeouts read a :class:`Clock`, so tests
drive them with :class:`pulseloop.testing.FakeClock` instead of sleeping. Leases do not:
they measure whether a worker *process* is alive, which is wall-clock business.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Clock(Protocol):
    """Workflow time: epoch seconds, sleeping and timing out against it."""

    def now(self) -> float:
        """Seconds since the epoch."""

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time."""

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        """Like :func:`asyncio.timeout`: raise TimeoutError when ``seconds`` pass."""


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """``time.time()``."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        """``asyncio.timeout``."""
        return asyncio.timeout(seconds)
