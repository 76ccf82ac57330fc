"""The background purge a worker process runs for its organization (see
:mod:`pulseloop.store.retention`): a pass when the worker starts, then one every
``check_s`` seconds, each pass one transaction per batch of ``batch`` rows."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pulseloop.engine.clock import Clock
from pulseloop.store.retention import BATCH, PurgeReport, purge_org
from pulseloop.store.sealed.keyring import PayloadSql

log = logging.getLogger(__name__)

CHECK_S = 3600.0
"""Between passes: rows come due by the day, so an hour late is still on time."""


class Purger:
    """Applies an organization's retention policy in the background."""

    def __init__(
        self,
        store: PayloadSql,
        org: str,
        clock: Clock,
        *,
        batch: int = BATCH,
        check_s: float = CHECK_S,
    ) -> None:
        self.store = store
        self.org = org
        self.clock = clock
        self.batch = batch
        self.check_s = check_s
        self.last: PurgeReport | None = None
        """The last pass's report (tests read it after :attr:`idle` is set)."""
        self.idle = asyncio.Event()
        """Set whenever a pass has finished (tests wait on it, not on time)."""
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        """Start passing in the background."""
        self._task = asyncio.create_task(self._loop(), name="pulseloop-purger")

    def kick(self) -> None:
        """Pass again now (tests, after moving a fake clock)."""
        self.idle.clear()
        self._wake.set()

    async def stop(self) -> None:
        """Stop between batches."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                self.last = await purge_org(
                    self.store, self.org, self.clock.now(), batch=self.batch
                )
                if self.last.runs or self.last.scans:  # counts only: no patient data
                    log.info(
                        "retention purged %d runs and %d scans of %s in %d batches",
                        self.last.runs, self.last.scans, self.org, len(self.last.batches),
                    )  # fmt: skip
            except Exception:  # keep serving; the next pass retries
                log.exception("purging payloads past retention failed; retrying")
            self.idle.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check_s):
                    await self._wake.wait()
            self._wake.clear()
