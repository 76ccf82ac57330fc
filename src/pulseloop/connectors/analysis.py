"""Analysing accepted scan uploads as durable jobs, so an upload answered 202 is never lost.

Design record. The upload used to be analysed in an in-memory task of the process that
accepted it: kill that process right after its 202 and the scan stayed ``processing``
forever, with its single-use link spent. Now accepting an upload stores it as an
:class:`~pulseloop.store.base.AnalysisJob` in the same transaction that moves the scan to
``processing`` (``Store.accept_upload``), and an :class:`AnalysisRunner` in any process
with the vitals extra claims jobs with a lease, analyses them in the vitals process pool
and records the outcome with ``finish_scan``, which drops the job and wakes the run in one
transaction. A runner that dies mid-analysis is proven dead through the store's worker
liveness (its jobs are claimable at once) or, failing that, its lease runs out; the job is
analysed again. Two analyses of one job are harmless: the first outcome recorded wins and
the run is told once. A job that keeps killing its analyser fails the scan with
``analysis_error`` after ``MAX_ATTEMPTS`` claims instead of looping forever.

Considered: a queue in memory with a write-ahead file (one process only, and a second
source of truth beside the database); analysing inside the HTTP request (ties a patient's
phone to a CPU-bound job and still loses it on a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from pulseloop.engine.clock import Clock
from pulseloop.engine.codec import encode
from pulseloop.errors import PulseloopError
from pulseloop.store.base import AnalysisJob
from pulseloop.store.protocols import AnalysisQueue
from pulseloop.store.sealed.files import opened_upload

log = logging.getLogger(__name__)

LEASE_S = 120.0
"""A claimed job is re-analysed elsewhere after this long if its runner vanished unseen
(analysis is bounded to seconds; see docs/vitals.md)."""
MAX_ATTEMPTS = 3
POLL_S = 1.0
"""How often an idle runner looks for jobs other processes accepted."""


class AnalysisServices(Protocol):
    """What the runner needs from its process (a :class:`~pulseloop.runtime.Runtime`, or
    an ``App``): the analysis queue, a clock, and the process's hooks."""

    @property
    def store(self) -> AnalysisQueue:
        """The open store's scans and analysis jobs."""

    @property
    def clock(self) -> Clock:
        """The time outcomes are recorded at."""

    def notify_work(self) -> None:
        """An outcome may have woken a run: tell this process's worker."""

    def on_close(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Await ``fn`` before the store closes."""


class AnalysisRunner:
    """Claims analysis jobs from the store and records their outcomes."""

    def __init__(
        self, app: AnalysisServices, *, concurrency: int = 2, poll_s: float = POLL_S
    ) -> None:
        self.app = app
        self.id = f"a-{uuid.uuid4().hex[:12]}"
        self.concurrency = concurrency
        self.poll_s = poll_s
        self._kick = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._passes = 0
        self._idle_pass = 0
        self._pass_done = asyncio.Event()

    @property
    def running(self) -> bool:
        """Whether the claim loop is running."""
        return self._loop_task is not None

    async def start(self) -> None:
        """Prove this process alive, free dead runners' jobs, and start claiming."""
        if self._loop_task is not None:
            return
        store = self.app.store
        await store.register_worker(self.id)
        await store.reclaim_dead_workers(self.app.clock.now())
        self._loop_task = asyncio.create_task(self._claim_loop(), name="pulseloop-analysis")
        self.app.on_close(self.stop)  # analyses in flight finish before the store closes

    def kick(self) -> None:
        """Look for jobs now (this process just accepted an upload)."""
        self._kick.set()

    async def drain(self) -> None:
        """Return once a claim pass begun after this call found nothing and no analysis is
        in flight (tests, shutdown)."""
        if self._loop_task is None:
            return
        while True:
            target = self._passes + 1
            self.kick()
            while self._passes < target:
                self._pass_done.clear()
                await self._pass_done.wait()
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
                continue
            if self._idle_pass >= target:
                return

    async def stop(self) -> None:
        """Stop claiming, finish the analyses in flight, give up the liveness token."""
        if self._loop_task is None:
            return
        self._loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._loop_task
        self._loop_task = None
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self.app.store.unregister_worker(self.id)

    async def _claim_loop(self) -> None:
        while True:
            self._kick.clear()
            found = 0
            free = self.concurrency - len(self._in_flight)
            try:
                if free > 0:
                    jobs = await self.app.store.claim_analyses(self.id, free, time.time(), LEASE_S)
                    found = len(jobs)
                    for job in jobs:
                        task = asyncio.create_task(self._analyse(job))
                        self._in_flight.add(task)
                        task.add_done_callback(self._finished)
            except Exception:
                log.exception("claiming analysis jobs failed; will retry")
            self._passes += 1
            if found == 0 and free > 0:
                self._idle_pass = self._passes
            self._pass_done.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._kick.wait()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self.kick()  # capacity freed: there may be more waiting

    async def _analyse(self, job: AnalysisJob) -> None:
        store, clock = self.app.store, self.app.clock
        finished = False
        try:
            if job.attempts > MAX_ATTEMPTS:
                log.error("scan %s: analysis failed %d times; giving up", job.scan_id, MAX_ATTEMPTS)
                await store.finish_scan(job.scan_id, "failed", None, "analysis_error", clock.now())
            elif job.kind == "video" and not Path(job.payload).exists():
                # Accepted by a server on another machine, into its own folder: leave the
                # job to be claimed again when this claim's lease runs out (by the machine
                # that has the file, with luck); after MAX_ATTEMPTS claims the scan fails.
                log.warning(
                    "scan %s: its uploaded video is not on this machine, so it was left for "
                    "another analyser; set PULSELOOP_UPLOAD_DIR to storage every analysing "
                    "server shares (docs/deploy.md)",
                    job.scan_id,
                )
                return
            else:
                result = await _run(job, store)
                reason = result.get("failure_reason")
                await store.finish_scan(
                    job.scan_id, "failed" if reason else "completed",
                    encode(result, "the vitals result"), reason, clock.now(),
                )  # fmt: skip
            finished = True
        except PulseloopError as exc:  # e.g. video_unreadable: the upload's fault
            log.info("scan %s refused: %s", job.scan_id, exc.code)
            await store.finish_scan(job.scan_id, "failed", None, exc.code, clock.now())
            finished = True
        except Exception:
            log.exception("analysis of scan %s failed", job.scan_id)
            await store.finish_scan(job.scan_id, "failed", None, "analysis_error", clock.now())
            finished = True
        finally:
            if finished and job.kind == "video":
                Path(job.payload).unlink(missing_ok=True)
        self.app.notify_work()


async def _run(job: AnalysisJob, store: AnalysisQueue) -> dict[str, Any]:
    """The job's vitals, computed in the vitals process pool (parsing included). A video
    is sealed at rest: the decoder reads it through a reader that opens its chunks in
    memory as it goes, so no plaintext of it is written anywhere (docs/security.md)."""
    from pulseloop.vitals.pool import analyze_trace_async, analyze_video_async

    if job.kind == "trace":
        result = await analyze_trace_async(job.payload)
    elif job.kind == "video":
        source = await opened_upload(store, Path(job.payload), job.org, job.scan_id)
        result = await analyze_video_async(source)
    else:
        raise ValueError(f"unknown analysis job kind {job.kind!r}")
    outcome: dict[str, Any] = result.to_json()
    return outcome
