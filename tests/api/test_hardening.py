"""Size limits, malformed bodies, rate limits, headers, health and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pulseloop.server.limits import RateLimit
from tests.api.conftest import Api


@pytest.mark.parametrize("api_options", [{"max_json_bytes": 10_000}])
async def test_large_json_bodies_are_413_and_nothing_is_created(api: Api) -> None:
    big = {"body": {"note": "x" * 20_000}}
    declared = await api.client.post("/v1/loops/waits/runs", json=big, headers=api.a)

    async def chunks() -> AsyncIterator[bytes]:  # streamed, no Content-Length
        yield b'{"body": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}'

    streamed = await api.client.post(
        "/v1/loops/waits/runs", content=chunks(),
        headers={**api.a, "Content-Type": "application/json"},
    )  # fmt: skip
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["code"] == "limit_exceeded"
    assert await api.app.list_runs() == []


async def test_an_event_body_over_1_mib_is_413(api: Api) -> None:
    response = await api.client.post(
        "/v1/loops/waits/runs", json={"body": "x" * (1024 * 1024 + 1)}, headers=api.a
    )
    assert (response.status_code, response.json()["code"]) == (413, "limit_exceeded")
    assert await api.app.list_runs() == []


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"body": 1, "surprise": 2}', b'{"id": ""}', b"[]", b'{"id": 5}'],
)
async def test_malformed_bodies_are_422_with_the_field(api: Api, content: bytes) -> None:
    response = await api.client.post(
        "/v1/loops/waits/runs", content=content,
        headers={**api.a, "Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 422, response.text
    body = response.json()
    expected = "invalid_run_id" if content == b'{"id": ""}' else "invalid_request"
    assert body["code"] == expected and body["message"] and "field" in body
    assert await api.app.list_runs() == []


async def test_unknown_routes_and_methods_use_the_error_shape(api: Api) -> None:
    missing = await api.client.get("/v1/nothing", headers=api.a)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    wrong = await api.client.delete("/v1/runs", headers=api.a)
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")


def test_token_bucket_refills() -> None:
    now = [0.0]
    bucket = RateLimit(lambda *_: None, rate_per_s=1.0, burst=2, clock=lambda: now[0])  # type: ignore[arg-type]
    assert [bucket.take("a"), bucket.take("a")] == [0.0, 0.0]
    assert bucket.take("a") == pytest.approx(1.0)
    assert bucket.take("b") == 0.0  # per address
    now[0] = 1.0
    assert bucket.take("a") == 0.0


@pytest.mark.parametrize("api_options", [{"scan_burst": 3, "scan_rate_per_s": 0.001}])
async def test_scan_links_are_rate_limited_per_client(api: Api) -> None:
    statuses = [(await api.client.get("/s/abcdefghijkl/status")).status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
    limited = await api.client.get("/s/abcdefghijkl/status")
    assert limited.json()["code"] == "rate_limited" and int(limited.headers["retry-after"]) > 0
    assert (await api.client.get("/v1/runs", headers=api.a)).status_code == 200  # API unaffected


async def test_security_headers_on_api_responses(api: Api) -> None:
    for response in (
        await api.client.get("/v1/runs", headers=api.a),
        await api.client.get("/v1/runs"),
        await api.client.get("/healthz"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in response.headers["content-security-policy"]


async def test_healthz_openapi_and_docs(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    schema: dict[str, Any] = (await api.client.get("/openapi.json")).json()
    assert "/v1/runs/{run_id}" in schema["paths"] and "/s/{token}" not in schema["paths"]
    docs = await api.client.get("/docs")
    assert docs.status_code == 200 and "/v1/scans/{scan_id}/video" in docs.text


async def test_metrics(api: Api) -> None:
    await api.client.post("/v1/loops/fails/runs", json={"id": "f"}, headers=api.a)
    from tests.helpers import until_status

    await until_status(api.app, "f", "failed")
    await api.client.post("/v1/loops/waits/runs", json={"id": "q"}, headers=api.b)
    _, scan_id = await api.parked_scan()
    text = (await api.client.get("/metrics")).text
    assert 'pulseloop_runs{status="failed"} 1.0' in text
    assert "pulseloop_queue_depth 1.0" in text  # B's run: no worker serves clinic-b here
    assert 'pulseloop_scans{status="pending"} 1.0' in text
    for status in ("opened", "aligning", "capturing", "processing", "expired"):
        assert f'pulseloop_scans{{status="{status}"}} 0.0' in text  # every journey state
    assert "pulseloop_step_latency_seconds_count" in text
    for secret in ("clinic-a", "clinic-b", scan_id, "p-secret"):
        assert secret not in text
