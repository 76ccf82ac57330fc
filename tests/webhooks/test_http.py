"""Webhooks and run events over HTTP, on both backends: the ``/v1/webhooks`` routes
(organization isolation, the secret shown once, the delivery log), the dashboard page,
and ``GET /v1/runs/{id}/events`` streamed by a real uvicorn to a real httpx client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from pulseloop.server.app import create_app
from pulseloop.server.serve import free_port, serving
from tests.api.conftest import Api
from tests.dashboard.test_dashboard import signed_in
from tests.helpers import until_status

Frame = tuple[str | None, str, dict[str, Any]]
"""(id, event, data) of one server-sent event."""


async def test_webhook_routes_are_per_organization(api: Api) -> None:
    created = await api.client.post(
        "/v1/webhooks", json={"url": "https://ehr.example/hooks", "events": ["run.failed"]},
        headers=api.a,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["events"] == ["run.failed"]
    listed = (await api.client.get("/v1/webhooks", headers=api.a)).json()["webhooks"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and listed[0]["secret"] is None
    assert (await api.client.get("/v1/webhooks", headers=api.b)).json() == {"webhooks": []}
    gone = await api.client.delete(f"/v1/webhooks/{endpoint['id']}", headers=api.b)
    assert gone.status_code == 404 and gone.json()["code"] == "webhook_not_found"
    refused = await api.client.post(
        "/v1/webhooks", json={"url": "gopher://ehr.example/"}, headers=api.a
    )
    assert refused.status_code == 422 and refused.json()["field"] == "url"
    assert (await api.client.get("/v1/webhooks", headers=api.auth(api.revoked))).status_code == 401
    removed = await api.client.delete(f"/v1/webhooks/{endpoint['id']}", headers=api.a)
    assert removed.status_code == 204
    rows = await api.app.store.audit.rows("clinic-a", object_kind="webhook")
    assert sorted(r.action for r in rows) == ["add_webhook", "remove_webhook"]


async def test_the_delivery_log_shows_in_the_api_and_the_dashboard(api: Api) -> None:
    await api.app.webhooks.add("http://127.0.0.1:9/closed", events=["run.failed"])
    await api.app.client("clinic-b").webhooks.add("http://127.0.0.1:9/b-only")
    run = await api.client.post("/v1/loops/fails/runs", json={"id": "f-1"}, headers=api.a)
    assert run.status_code == 202
    await until_status(api.app, "f-1", "failed")
    log = (await api.client.get("/v1/webhook-deliveries", headers=api.a)).json()["deliveries"]
    assert [(d["run_id"], d["event"]) for d in log] == [("f-1", "run.failed")]
    assert (await api.client.get("/v1/webhook-deliveries", headers=api.b)).json() == {
        "deliveries": []
    }
    await signed_in(api.client, api.key_a)
    page = await api.client.get("/dashboard/webhooks")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert f'data-delivery="{log[0]["id"]}"' in page.text and "127.0.0.1:9/closed" in page.text
    assert "b-only" not in page.text
    assert 'href="/dashboard/webhooks"' in page.text


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    """Parse a text/event-stream as it arrives (comments skipped)."""
    event_id, event, data = None, "message", ""
    async for line in response.aiter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if data:
                yield event_id, event, json.loads(data)
            event_id, event, data = None, "message", ""
            continue
        name, _, value = line.partition(": ")
        if name == "id":
            event_id = value
        elif name == "event":
            event = value
        elif name == "data":
            data += value


async def test_a_run_streams_from_trigger_to_completion_and_resumes(api: Api) -> None:
    asgi = create_app(api.app)
    async with (
        serving(asgi, port=free_port(), log_level="warning") as base,
        httpx.AsyncClient(base_url=base, headers=api.a) as http,
    ):
        run = (await http.post("/v1/loops/waits/runs", json={"id": "w-1"})).json()
        await until_status(api.app, run["id"], "waiting")
        seen: list[Frame] = []
        async with http.stream("GET", "/v1/runs/w-1/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for frame in frames(response):
                seen.append(frame)
                if frame[1] == "status" and frame[2]["status"] == "waiting":
                    await api.app.send_event("w-1", "reply", {"text": "fine"})
        resumed: list[Frame] = []
        first_step = seen[0][0]
        async with http.stream(
            "GET", "/v1/runs/w-1/events", headers={"Last-Event-ID": str(first_step)}
        ) as response:
            resumed = [frame async for frame in frames(response)]
        other = await http.get("/v1/runs/w-1/events", headers=api.b)
    names = [(e, d.get("name") or d["status"]) for _, e, d in seen]
    assert names[0] == ("step", "ask") and names[1] == ("status", "waiting")
    assert ("step", "reply") in names and names[-1] == ("end", "completed")
    step_ids = [int(i or "-1") for i, e, _ in seen if e == "step"]
    assert step_ids == sorted(step_ids) and len(set(step_ids)) == len(step_ids)
    assert "fine" not in json.dumps(seen)  # names, statuses and times; no outputs
    # resumed after the first step: that step is not sent again; the rest and the end are
    assert [(e, d.get("name") or d["status"]) for _, e, d in resumed] == [
        n for n in names if n != ("step", "ask") and n[0] != "status"
    ]
    assert other.status_code == 404  # another organization's run is not found
    reads = await api.app.store.audit.rows("clinic-a", object_id="w-1")
    assert sum(1 for r in reads if r.action == "read_run") >= 2


async def test_idle_streams_share_one_poll(api: Api) -> None:
    """Many streams of parked runs cost one query per interval between them, not one
    each (the watcher's counter), and every stream still hears its run end."""
    asgi = create_app(api.app)
    watcher = asgi.state.run_watcher
    count = 20
    async with (
        serving(asgi, port=free_port(), log_level="warning") as base,
        httpx.AsyncClient(base_url=base, headers=api.a) as http,
    ):
        for i in range(count):
            await http.post("/v1/loops/waits/runs", json={"id": f"idle-{i}"})
        for i in range(count):
            await until_status(api.app, f"idle-{i}", "waiting")
        streams = [http.stream("GET", f"/v1/runs/idle-{i}/events") for i in range(count)]
        responses = [await s.__aenter__() for s in streams]
        readers = [frames(r) for r in responses]
        for reader in readers:  # each: step "ask", then status waiting
            assert (await anext(reader))[1] == "step"
            assert (await anext(reader))[2]["status"] == "waiting"
        polls, passes = watcher.polls, watcher.passes
        for i in range(count):
            await api.app.send_event(f"idle-{i}", "reply", {"n": i})
        ends = 0
        for reader in readers:
            async for _, event, data in reader:
                if event == "end":
                    assert data["status"] == "completed"
                    ends += 1
                    break
        for s in streams:
            await s.__aexit__(None, None, None)
    assert ends == count
    # each pass read all twenty runs in one query
    assert watcher.passes > passes and watcher.polls - polls == watcher.passes - passes
