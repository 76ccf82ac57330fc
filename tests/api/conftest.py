"""Two organizations with keys, an App serving the first, and an httpx client on the ASGI
app (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pulseloop import App, Event, Loop, NonRetryableError, Step
from pulseloop.connectors.facial_scan import ScanService
from pulseloop.keys import hash_api_key, new_api_key
from pulseloop.server.app import create_app
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.helpers import until_status

SCAN_STEP = "Generate a health scan"


class ApiScan(Loop):
    """Provision a scan with patient metadata, then park on it."""

    name = "api-scan"

    async def run(self, event: Event, step: Step) -> Any:
        async def provision(ctx: Any) -> Any:
            return await ctx.FACIAL_SCAN.create(
                expires_in=600, metadata={"patientId": event.body.get("patientId", "p-1")}
            )

        await step.do(SCAN_STEP, provision)
        return await step.wait_for_scan(timeout="10 minutes")


class Fails(Loop):
    """Fails for good at its second step (for retry)."""

    name = "fails"

    async def run(self, event: Event, step: Step) -> Any:
        await step.do("first", lambda: 1)

        def boom() -> None:
            raise NonRetryableError("boom")

        await step.do("second", boom)


class Waits(Loop):
    """Parks on an event (for pause, resume, cancel)."""

    name = "waits"

    async def run(self, event: Event, step: Step) -> Any:
        await step.do("ask", lambda: "asked")
        return await step.wait_for_event("reply", type="reply", timeout="1 hour")


@dataclass
class Api:
    """The served App, a client, and keys of two organizations."""

    app: App
    client: httpx.AsyncClient
    clock: FakeClock
    service: ScanService
    key_a: str
    key_b: str
    revoked: str

    def auth(self, key: str) -> dict[str, str]:
        """The Authorization header for ``key``."""
        return {"Authorization": f"Bearer {key}"}

    @property
    def a(self) -> dict[str, str]:
        """Headers of organization A (the App's own)."""
        return self.auth(self.key_a)

    @property
    def b(self) -> dict[str, str]:
        """Headers of organization B."""
        return self.auth(self.key_b)

    async def parked_scan(self) -> tuple[str, str]:
        """A run of A parked on a fresh scan: (run id, scan id)."""
        response = await self.client.post(
            "/v1/loops/api-scan/runs", json={"body": {"patientId": "p-secret"}}, headers=self.a
        )
        assert response.status_code == 202, response.text
        run_id: str = response.json()["id"]
        await until_status(self.app, run_id, "waiting")
        scan_id: str = (await self.app.get_run(run_id)).step(SCAN_STEP).output["id"]
        return run_id, scan_id


async def make_key(app: App, org: str) -> str:
    """A new key of ``org`` (creating the org)."""
    await app.store.ensure_org(org, 0.0)
    key_id, key = new_api_key()
    await app.store.create_key(org, key_id, hash_api_key(key), 0.0)
    return key


@pytest.fixture
def api_options() -> dict[str, Any]:
    """Extra ``create_app`` arguments (tests override this fixture)."""
    return {}


@pytest.fixture
async def api(
    make_app: AppFactory, clock: FakeClock, api_options: dict[str, Any]
) -> AsyncIterator[Api]:
    """``create_app`` over an App of org ``clinic-a``; keys of clinic-a and clinic-b."""
    async with make_app([ApiScan, Fails, Waits], org="clinic-a") as app:
        key_a = await make_key(app, "clinic-a")
        key_b = await make_key(app, "clinic-b")
        revoked = await make_key(app, "clinic-a")
        await app.store.revoke_key(revoked.split("_")[1], 0.0)
        service = ScanService(app)
        asgi = create_app(app, scan_service=service, **api_options)
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield Api(app, client, clock, service, key_a, key_b, revoked)
        await service.drain()
