"""A run's family over HTTP: ``GET /v1/runs/{id}/children`` and the run page's parent link
and child tree, scoped to the caller's organization."""

from __future__ import annotations

from typing import Any

import httpx

from pulseloop import Event, Loop, Step
from pulseloop.connectors.facial_scan import ScanService
from pulseloop.server.app import create_app
from tests.api.conftest import make_key
from tests.conftest import AppFactory
from tests.dashboard.conftest import sign_in


class Leaf(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("leaf", lambda: event.body)


class Middle(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.run_loop("leaf", Leaf, "deep")


class Root(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        middle = await step.run_loop("middle", Middle, None)
        leaf = await step.run_loop("leaf", Leaf, "shallow")
        return [middle, leaf]


async def test_children_over_the_api_and_the_dashboard(make_app: AppFactory) -> None:
    async with make_app([Root, Middle, Leaf], org="clinic-a") as app:
        key_a, key_b = await make_key(app, "clinic-a"), await make_key(app, "clinic-b")
        run = await app.trigger("root", id="r")
        assert (await app.wait_for_run(run.id, timeout="20 seconds")).output == ["deep", "shallow"]
        service = ScanService(app)
        transport = httpx.ASGITransport(app=create_app(app, scan_service=service))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            a = {"Authorization": f"Bearer {key_a}"}
            b = {"Authorization": f"Bearer {key_b}"}
            tree = (await client.get("/v1/runs/r/children", headers=a)).json()
            child = (await client.get("/v1/runs/r~middle/children", headers=a)).json()
            hidden = await client.get("/v1/runs/r/children", headers=b)
            await sign_in(client, key_a)
            page = (await client.get("/dashboard/runs/r~middle")).text
        await service.drain()
        audited = await app.audit_rows(object_id="r")
    assert tree["parent_run_id"] is None
    assert [(c["id"], c["depth"], c["parent_run_id"], c["status"]) for c in tree["children"]] == [
        ("r~leaf", 1, "r", "completed"),  # the fake clock stands still: then by id
        ("r~middle", 1, "r", "completed"),
        ("r~middle~leaf", 2, "r~middle", "completed"),
    ]
    assert (child["parent_run_id"], child["parent_step"]) == ("r", "middle")
    assert hidden.status_code == 404
    assert [(row.action, row.object_kind) for row in audited] == [("list_runs", "run")]
    assert 'id="run-parent"' in page and "/dashboard/runs/r<" not in page
    assert 'href="/dashboard/runs/r"' in page and 'href="/dashboard/runs/r~middle~leaf"' in page
