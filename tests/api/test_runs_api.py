"""The ``/v1`` runs and scans endpoints of one organization."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.conftest import Api
from tests.helpers import until_status


async def test_trigger_is_idempotent_with_an_id(api: Api) -> None:
    first = await api.client.post("/v1/loops/waits/runs", json={"id": "r1"}, headers=api.a)
    again = await api.client.post(
        "/v1/loops/waits/runs", json={"id": "r1", "body": {"x": 1}}, headers=api.a
    )
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == "r1" and again.json()["body"] is None


async def test_list_filters_and_cursor_pages(api: Api) -> None:
    for i in range(5):  # same clock instant: the cursor must break ties by id
        await api.client.post("/v1/loops/waits/runs", json={"id": f"w{i}"}, headers=api.a)
    await api.client.post("/v1/loops/fails/runs", json={"id": "f0"}, headers=api.a)
    await until_status(api.app, "f0", "failed")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/v1/runs", params=params, headers=api.a)).json()
        seen += [r["id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["f0", "w0", "w1", "w2", "w3", "w4"] and len(set(seen)) == 6
    failed = (await api.client.get("/v1/runs?status=failed", headers=api.a)).json()["runs"]
    assert [r["id"] for r in failed] == ["f0"]
    loop = (await api.client.get("/v1/runs?loop=waits&limit=10", headers=api.a)).json()["runs"]
    assert len(loop) == 5
    future = await api.client.get(
        "/v1/runs", params={"created_after": "2999-01-01T00:00:00Z"}, headers=api.a
    )
    assert future.json()["runs"] == []
    bad = await api.client.get("/v1/runs?cursor=nonsense", headers=api.a)
    assert (bad.status_code, bad.json()["code"], bad.json()["field"]) == (
        422, "invalid_request", "cursor",
    )  # fmt: skip


async def test_run_detail_and_operator_actions(api: Api) -> None:
    await api.client.post("/v1/loops/fails/runs", json={"id": "f"}, headers=api.a)
    await until_status(api.app, "f", "failed")
    detail = (await api.client.get("/v1/runs/f", headers=api.a)).json()
    assert [s["name"] for s in detail["steps"]] == ["first", "second"]
    second = detail["steps"][1]
    assert second["status"] == "failed" and second["attempts"][0]["error"]["message"] == "boom"
    retried = await api.client.post("/v1/runs/f/retry", headers=api.a)
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    await until_status(api.app, "f", "failed")
    restarted = await api.client.post(
        "/v1/runs/f/restart", json={"from_step": "first"}, headers=api.a
    )
    assert restarted.json()["status"] == "queued"
    await until_status(api.app, "f", "failed")
    wrong = await api.client.post("/v1/runs/f/pause", headers=api.a)
    assert (wrong.status_code, wrong.json()["code"]) == (409, "invalid_run_state")

    await api.client.post("/v1/loops/waits/runs", json={"id": "w"}, headers=api.a)
    await until_status(api.app, "w", "waiting")
    for action, status in (("pause", "paused"), ("resume", "queued"), ("cancel", "cancelled")):
        response = await api.client.post(f"/v1/runs/w/{action}", headers=api.a)
        assert response.status_code == 200, response.text
        if action != "resume":
            assert response.json()["status"] == status
    assert (await api.app.get_run("w")).status == "cancelled"


async def test_scan_state(api: Api) -> None:
    run_id, scan_id = await api.parked_scan()
    scan = (await api.client.get(f"/v1/scans/{scan_id}", headers=api.a)).json()
    assert scan["run_id"] == run_id and scan["status"] == "pending"
    assert scan["metadata"] == {"patientId": "p-secret"} and scan["vitals"] is None
    assert "url" not in scan and "token" not in str(scan)


async def test_video_upload_is_analysed_and_wakes_the_run(api: Api) -> None:
    run_id, scan_id = await api.parked_scan()
    response = await api.client.post(
        f"/v1/scans/{scan_id}/video", content=b"\x00not a video at all" * 100, headers=api.a
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "processing"
    await api.service.drain()
    scan = (await api.client.get(f"/v1/scans/{scan_id}", headers=api.a)).json()
    assert (scan["status"], scan["failure_reason"]) == ("failed", "video_unreadable")
    await until_status(api.app, run_id, "completed")
    again = await api.client.post(f"/v1/scans/{scan_id}/video", content=b"x", headers=api.a)
    assert (again.status_code, again.json()["code"]) == (409, "scan_already_uploaded")


@pytest.mark.parametrize("api_options", [{"max_video_bytes": 1000}])
async def test_video_over_the_limit_is_413_and_nothing_is_written(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    _, scan_id = await api.parked_scan()

    async def chunks() -> AsyncIterator[bytes]:  # a body with no Content-Length
        for _ in range(10):
            yield b"x" * 500

    for content in (b"x" * 1001, chunks()):
        response = await api.client.post(
            f"/v1/scans/{scan_id}/video", content=content, headers=api.a
        )
        assert (response.status_code, response.json()["code"]) == (413, "limit_exceeded")
    scan = (await api.client.get(f"/v1/scans/{scan_id}", headers=api.a)).json()
    assert scan["status"] == "pending"
    assert list(tmp_path.glob("pulseloop-upload-*")) == []


async def test_logs_carry_no_keys_or_patient_metadata(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, scan_id = await api.parked_scan()
    await api.client.get(f"/v1/scans/{scan_id}", headers=api.a)
    await api.client.get("/v1/runs", headers=api.auth(api.revoked))
    text = caplog.text
    for secret in (api.key_a, api.revoked, "p-secret"):
        assert secret not in text
