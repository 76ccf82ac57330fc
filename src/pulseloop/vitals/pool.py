"""Run analyses in worker processes, so CPU-bound work never blocks an event loop.

One :class:`VitalsPool` (a ``ProcessPoolExecutor`` with the *spawn* start method) is shared
by everything in a process: the engine's workers and the server await
:func:`analyze_trace_async` / :func:`analyze_video_async`, which hand the job to the pool and
suspend until it is done.

Design record. Threads were rejected: the analysis is numpy/OpenCV/PyAV work that holds the
GIL long enough to stall an event loop. *fork* was rejected: forking a process that runs an
asyncio loop and database threads copies their locks in whatever state they are in; spawn
starts clean (the cost is ~1 s of imports once per worker). Workers are capped at 2 by
default, the cores this service is sized for; a broken pool (a worker killed by the OOM
killer) is replaced on the next call instead of failing every later scan.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pulseloop.vitals.analyze import analyze_trace, analyze_video
from pulseloop.vitals.result import VitalsResult
from pulseloop.vitals.trace import Trace, parse_trace

if TYPE_CHECKING:
    from pulseloop.vitals.video import VideoSource

DEFAULT_WORKERS = 2
PARENT_CHECK_S = 1.0


def _exit_with_parent(parent_pid: int) -> None:
    """Pool-worker initializer: end this worker when the process that made it is gone.

    A parent that exits cleanly shuts its pool down, but one that is SIGKILLed (a crashed
    server, a supervisor's kill) leaves spawn workers blocked on their queue forever,
    reparented to init. Measured here: four such orphans after killed test runs.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            threading.Event().wait(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="pulseloop-parent-watch", daemon=True).start()


def _trace_job(data: Trace | bytes | str | dict[str, Any]) -> VitalsResult:
    trace = data if isinstance(data, Trace) else parse_trace(data)
    return analyze_trace(trace)


def _video_job(path: str | VideoSource) -> VitalsResult:
    return analyze_video(path)


class VitalsPool:
    """A lazily started, self-healing process pool for vitals analyses."""

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or min(DEFAULT_WORKERS, os.cpu_count() or 1)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> ProcessPoolExecutor:
        """The running executor, started on first use."""
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.max_workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_exit_with_parent,
                    initargs=(os.getpid(),),
                )
            return self._executor

    async def run(self, fn: Any, *args: Any) -> VitalsResult:
        """Run ``fn(*args)`` in a worker; restart the pool once if a worker died."""
        loop = asyncio.get_running_loop()
        try:
            result: VitalsResult = await loop.run_in_executor(self.executor(), fn, *args)
        except BrokenProcessPool:
            self._discard()
            result = await loop.run_in_executor(self.executor(), fn, *args)
        return result

    def _discard(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def shutdown(self) -> None:
        """Stop the workers (waits for running analyses)."""
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
            self._executor = None


_shared: VitalsPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> VitalsPool:
    """The process-wide pool the engine and the server share."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = VitalsPool()
        return _shared


async def analyze_trace_async(
    trace: Trace | bytes | str | dict[str, Any], pool: VitalsPool | None = None
) -> VitalsResult:
    """:func:`~pulseloop.vitals.analyze_trace` in a worker process.

    Raw upload bytes may be passed: they are parsed in the worker too (a 4 MiB JSON parse
    is CPU work). Raises :class:`~pulseloop.vitals.errors.TraceInvalid` like the sync call.
    """
    return await (pool or shared_pool()).run(_trace_job, trace)


async def analyze_video_async(
    path: str | Path | VideoSource, pool: VitalsPool | None = None
) -> VitalsResult:
    """:func:`~pulseloop.vitals.analyze_video` in a worker process (no progress callback).
    A :class:`~pulseloop.vitals.video.VideoSource` (a sealed upload) is pickled to the
    worker and opened there."""
    source = str(path) if isinstance(path, Path) else path
    return await (pool or shared_pool()).run(_video_job, source)
