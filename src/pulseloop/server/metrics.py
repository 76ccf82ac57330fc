"""``/healthz`` and Prometheus ``/metrics``.

Considered: counting in the worker as it records steps. Rejected: ``pulseloop server``
serves HTTP with no worker, and workers run in other processes, so in-process counters
would show a fraction of the work. Instead each scrape reads the store (the one source
every process shares): run and scan totals by status, and the latencies of ``do`` steps
finished since the previous scrape, which feed a histogram kept in this process (so rates
over it work as usual). Totals span organizations and name none: no org, run, scan or
patient detail is ever a label.

Metrics:

* ``pulseloop_runs{status}``            gauge, runs in each status
* ``pulseloop_queue_depth``             gauge, runs queued for a worker
* ``pulseloop_scans{status}``           gauge, scans in each status (outcomes: completed,
  failed, expired)
* ``pulseloop_step_latency_seconds``    histogram of step durations (first attempt to result)
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pulseloop.engine.clock import Clock
from pulseloop.server.api_models import HealthOut
from pulseloop.store.base import RUN_STATUSES, SCAN_STATUSES
from pulseloop.store.protocols import OrgStore, StatsStore

LATENCY_BUCKETS_S = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600)


class MetricsStore(StatsStore, OrgStore, Protocol):
    """The totals ``/metrics`` reads, and an organization lookup ``/healthz`` uses as a
    cheap round trip."""


class MetricsSource(Protocol):
    """What these routes need from the App: its store and clock."""

    @property
    def store(self) -> MetricsStore:
        """The open store."""

    @property
    def clock(self) -> Clock:
        """When the first scrape starts counting steps."""


class Metrics:
    """A registry of this app's metrics, refreshed from the store on each scrape."""

    def __init__(self, app: MetricsSource) -> None:
        self.app = app
        self.registry = CollectorRegistry(auto_describe=True)
        self.runs = Gauge("pulseloop_runs", "Runs by status.", ["status"], registry=self.registry)
        self.queue = Gauge(
            "pulseloop_queue_depth", "Runs queued for a worker.", registry=self.registry
        )
        self.scans = Gauge(
            "pulseloop_scans", "Scans by status.", ["status"], registry=self.registry
        )
        self.step_latency = Histogram(
            "pulseloop_step_latency_seconds", "Step duration, first attempt to result.",
            buckets=LATENCY_BUCKETS_S, registry=self.registry,
        )  # fmt: skip
        self._steps_since = app.clock.now()
        self._lock = asyncio.Lock()

    async def render(self) -> bytes:
        """Refresh from the store, then the Prometheus text exposition."""
        async with self._lock:  # two scrapes at once must not count a step twice
            stats = await self.app.store.stats(self._steps_since)
            self._steps_since = stats.steps_until
            for status in RUN_STATUSES:
                self.runs.labels(status).set(stats.runs_by_status.get(status, 0))
            self.queue.set(stats.runs_by_status.get("queued", 0))
            for status in SCAN_STATUSES:
                self.scans.labels(status).set(stats.scans_by_status.get(status, 0))
            for seconds in stats.step_latencies_s:
                self.step_latency.observe(seconds)
            return generate_latest(self.registry)


def build_router(app: MetricsSource) -> APIRouter:
    """``GET /healthz`` and ``GET /metrics``."""
    router = APIRouter()
    metrics = Metrics(app)

    @router.get("/healthz", response_model=HealthOut, tags=["ops"])
    async def healthz() -> HealthOut:
        """The process is up and its database answers."""
        await app.store.get_org("")  # a cheap round trip through the database thread
        return HealthOut(status="ok")

    @router.get("/metrics", include_in_schema=False)
    async def prometheus(_: Request) -> Response:
        return Response(await metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
