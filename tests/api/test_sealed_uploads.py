"""Uploaded videos are sealed at rest (both backends): the file waiting for its analysis
holds none of the video's bytes, opens back to exactly the upload, and a file cut short,
reordered or moved to another scan is refused with a clear error, never decoded."""

from __future__ import annotations

import struct
from pathlib import Path

import httpx
import pytest

from pulseloop.connectors.facial_scan import ScanService
from pulseloop.errors import EncryptionKeyError
from pulseloop.server.app import create_app
from pulseloop.store.sealed import EncryptedStore
from pulseloop.store.sealed.files import CHUNK_BYTES, MAGIC, SealedVideo, sealed_key_id
from pulseloop.store.sealed.keyring import DataKey
from tests.api.conftest import SCAN_STEP, ApiScan, make_key
from tests.conftest import AppFactory
from tests.helpers import until_status

PATTERN = b"FACE-OF-PATIENT-0042|"
VIDEO = PATTERN * (3 * CHUNK_BYTES // len(PATTERN) + 100)  # three chunks and a bit
"""A stand-in video with a byte pattern to look for (sealing never parses it)."""


async def _uploaded(
    make_app: AppFactory, uploads: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str]:
    """Upload ``VIDEO`` through ``/v1`` with analysis off: (the stored file, scan id)."""
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
            sent = await client.post(f"/v1/scans/{scan_id}/video", content=VIDEO, headers=headers)
            assert sent.status_code == 202, sent.text
    (stored,) = uploads.iterdir()
    return stored, str(scan_id)


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


async def test_an_uploaded_video_is_sealed_on_disk_and_opens_to_the_upload(
    make_app: AppFactory, uploads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored, scan_id = await _uploaded(make_app, uploads, monkeypatch)
    raw = stored.read_bytes()
    assert raw.startswith(MAGIC) and PATTERN not in raw and PATTERN[:8] not in raw
    assert stored.stat().st_mode & 0o077 == 0
    async with make_app([ApiScan], org="clinic-a") as app:
        store = app.store
        assert isinstance(store, EncryptedStore)
        key_id = sealed_key_id(stored)
        assert key_id is not None
        key = await store.keyring.by_id(key_id)
        assert _opened(stored, key, scan_id) == VIDEO
        with pytest.raises(EncryptionKeyError, match="copied from another scan"):
            _opened(stored, key, "another-scan")


def _opened(stored: Path, key: DataKey, scan_id: str) -> bytes:
    """The whole video, read back through the analysis's reader."""
    with SealedVideo(str(stored), key.id, "clinic-a", scan_id, key.secret).open() as reader:
        return reader.read()


def _chunk_offsets(raw: bytes) -> list[int]:
    """Where each chunk starts in a sealed file."""
    at = raw.index(b"\n", len(MAGIC)) + 1
    at = raw.index(b"\n", at) + 1
    offsets = []
    while at < len(raw):
        offsets.append(at)
        at += 4 + struct.unpack(">I", raw[at : at + 4])[0]
    return offsets


async def test_a_truncated_or_reordered_upload_is_refused(
    make_app: AppFactory, uploads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored, scan_id = await _uploaded(make_app, uploads, monkeypatch)
    raw = stored.read_bytes()
    offsets = _chunk_offsets(raw)
    assert len(offsets) == 4
    a, b = raw[offsets[1] : offsets[2]], raw[offsets[2] : offsets[3]]
    broken = {
        "at a chunk boundary": raw[: offsets[3]],
        "inside a chunk": raw[: offsets[3] + 100],
        "after the header": raw[: offsets[0]],
        "reordered": raw[: offsets[1]] + b + a + raw[offsets[3] :],
    }
    async with make_app([ApiScan], org="clinic-a") as app:
        store = app.store
        assert isinstance(store, EncryptedStore)
        key = await store.keyring.by_id(sealed_key_id(stored) or "")
        for name, content in broken.items():
            stored.write_bytes(content)
            with pytest.raises(EncryptionKeyError, match="cannot be opened"):
                _opened(stored, key, scan_id)
            assert [p.name for p in uploads.iterdir()] == [stored.name], name  # no leftovers

        # and through the analysis: the scan fails with a clear reason, nothing decoded
        stored.write_bytes(raw[: offsets[3]])
        service = ScanService(app)
        await service.start()
        await service.drain()
        scan = await app.get_scan(scan_id)
        assert scan is not None
        assert (scan.status, scan.failure_reason) == ("failed", "encryption_key")
        assert list(uploads.iterdir()) == []
