"""Background services a process runs beside its worker: the purge
(:mod:`pulseloop.store.purger`), the re-encryption pass
(:mod:`pulseloop.store.sealed.resealer`) and webhook delivery
(:mod:`pulseloop.webhooks.deliverer`). Each is one asyncio task that passes, then waits
for a kick or its next due time; stopping cancels it between passes (every pass is one
or more whole transactions, so a cancelled one leaves nothing half done)."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_event(event: asyncio.Event, timeout_s: float) -> None:
    """Wait until ``event`` is set or ``timeout_s`` passes, without creating a task
    (``asyncio.wait_for`` makes one per call, and the claim loop waits constantly)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await event.wait()


class Background:
    """One background task: :meth:`start`, :meth:`kick`, :meth:`stop`; a subclass writes
    ``_loop`` and sets :attr:`idle` when a pass found nothing more to do."""

    task_name = "pulseloop-background"

    def __init__(self) -> None:
        self.idle = asyncio.Event()
        """Set when a pass found nothing more to do (tests wait on it, not on time)."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start passing in the background."""
        self._task = asyncio.create_task(self._loop(), name=self.task_name)

    def kick(self) -> None:
        """Pass again now (work was committed here, a key rotated, a clock moved)."""
        self.idle.clear()
        self._wake.set()

    async def stop(self) -> None:
        """Stop between passes."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` or until kicked, and take the kick."""
        await wait_event(self._wake, seconds)
        self._wake.clear()

    async def _loop(self) -> None:
        raise NotImplementedError
