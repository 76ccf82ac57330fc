"""``PULSELOOP_UPLOAD_DIR``: where video uploads wait for their analysis (docs/deploy.md)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pulseloop.connectors.facial_scan import ScanService
from pulseloop.errors import PulseloopError
from pulseloop.server.app import create_app
from pulseloop.store.sealed.files import MAGIC
from tests.api.conftest import SCAN_STEP, ApiScan, make_key
from tests.conftest import AppFactory
from tests.helpers import until_status


async def test_video_uploads_are_written_to_the_upload_dir(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uploads = tmp_path / "shared-uploads"
    uploads.mkdir()
    monkeypatch.setenv("PULSELOOP_UPLOAD_DIR", str(uploads))
    async with make_app([ApiScan], org="clinic-a") as app:
        headers = {"Authorization": f"Bearer {await make_key(app, 'clinic-a')}"}
        asgi = create_app(app, scan_service=ScanService(app, analyse=False))
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            run = await client.post("/v1/loops/api-scan/runs", json={"body": {}}, headers=headers)
            run_id = run.json()["id"]
            await until_status(app, run_id, "waiting")
            scan_id = (await app.get_run(run_id)).step(SCAN_STEP).output["id"]
            sent = await client.post(
                f"/v1/scans/{scan_id}/video", content=b"video bytes", headers=headers
            )
            assert sent.status_code == 202, sent.text
    (kept,) = uploads.iterdir()  # waiting there for whichever server analyses it
    assert kept.read_bytes().startswith(MAGIC)  # sealed (tests/api/test_sealed_uploads.py)


async def test_an_upload_dir_that_is_not_a_directory_stops_the_server(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-folder"
    monkeypatch.setenv("PULSELOOP_UPLOAD_DIR", str(missing))
    async with make_app([ApiScan], org="clinic-a") as app:
        with pytest.raises(PulseloopError, match=r"PULSELOOP_UPLOAD_DIR=.*no-such-folder"):
            create_app(app)
