"""A served App with one parked scan, and an httpx client on the ASGI app (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pulseloop import App, Event, Loop, Step
from pulseloop.connectors.facial_scan import ScanService
from pulseloop.server.app import create_app
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.helpers import until_status

STEP = "Generate a health scan"


class ServerScan(Loop):
    """Provision a scan (expiry from the event), then park on it."""

    name = "server-scan"

    async def run(self, event: Event, step: Step) -> Any:
        async def provision(ctx: Any) -> Any:
            return await ctx.FACIAL_SCAN.create(
                expires_in=event.body.get("expires_in", 600), metadata={"patientId": "p-1"}
            )

        await step.do(STEP, provision)
        return await step.wait_for_scan(timeout="10 minutes")


@dataclass
class Served:
    """The App, its scan service, an HTTP client, and the fake clock."""

    app: App
    service: ScanService
    client: httpx.AsyncClient
    clock: FakeClock

    async def provision(self, expires_in: float = 600) -> tuple[str, str]:
        """A new parked run and its scan path ``/s/<token>``."""
        run = await self.app.trigger("server-scan", {"expires_in": expires_in})
        await until_status(self.app, run.id, "waiting")
        url: str = (await self.app.get_run(run.id)).step(STEP).output["url"]
        return run.id, "/s/" + url.rsplit("/s/", 1)[1]


@pytest.fixture
async def served(make_app: AppFactory, clock: FakeClock) -> AsyncIterator[Served]:
    """``create_app`` over a fresh App, reached through httpx's ASGI transport."""
    async with make_app([ServerScan]) as app:
        service = ScanService(app)
        transport = httpx.ASGITransport(app=create_app(app, scan_service=service))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield Served(app, service, client, clock)
        await service.drain()
