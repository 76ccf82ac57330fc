"""Accepted scan uploads are durable analysis jobs: never lost, finished exactly once.

The real-process version (a server SIGKILLed right after its 202) is in
``tests/crash/test_scan_upload_crash.py``; these run on both backends.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pulseloop.connectors.analysis import LEASE_S, MAX_ATTEMPTS
from pulseloop.connectors.facial_scan import ScanService
from pulseloop.connectors.tokens import hash_token
from pulseloop.store.sealed.files import MAGIC
from tests.conftest import AppFactory
from tests.connectors.scan_helpers import trace_upload
from tests.connectors.test_facial_scan import HealthCheck, _created, token_of


async def test_an_upload_nobody_analysed_yet_is_analysed_by_the_next_analyser(
    make_app: AppFactory,
) -> None:
    upload, truth_bpm = trace_upload(66.0)
    async with make_app([HealthCheck]) as app:
        run = await app.trigger("health-check", {"p": 1})
        created = await _created(app, run.id)
        accepting = ScanService(app, analyse=False)  # e.g. a server that then died
        view = await accepting.accept_trace(token_of(created["url"]), upload)
        assert view.status == "processing"
        await accepting.drain()
        assert (await app.store.get_scan(app.org, created["id"])).status == "processing"

        analysing = ScanService(app)  # the next process that analyses
        await analysis_drained(analysing)
        done = await app.wait_for_run(run.id, timeout="1 minute")
    assert abs(done.output["scan"]["vitals"]["heart_rate_bpm"] - truth_bpm) < 2.0


async def test_a_job_is_claimed_once_and_its_first_outcome_stands(make_app: AppFactory) -> None:
    upload, _ = trace_upload(70.0)
    async with make_app([HealthCheck]) as app:
        run = await app.trigger("health-check", {"p": 2})
        created = await _created(app, run.id)
        token_hash = hash_token(token_of(created["url"]))
        store, now = app.store, app.clock.now()
        moved = await store.accept_upload(token_hash, ("pending",), "trace", upload.decode(), now)
        assert moved is not None and moved.status == "processing"
        assert await store.accept_upload(token_hash, ("pending",), "trace", "{}", now) is None

        (job,) = await store.claim_analyses("a-1", 5, 1_000.0, LEASE_S)
        assert (job.scan_id, job.kind, job.attempts) == (created["id"], "trace", 1)
        assert json.loads(job.payload) == json.loads(upload)
        assert await store.claim_analyses("a-2", 5, 1_000.0, LEASE_S) == []  # held
        (again,) = await store.claim_analyses("a-2", 5, 1_000.0 + LEASE_S + 1, LEASE_S)
        assert again.attempts == 2  # the first analyser vanished: its lease ran out

        result = {"vitals": {"heart_rate_bpm": 70.0}, "quality": {}}
        first = await store.finish_scan(job.scan_id, "completed", json.dumps(result), None, now)
        second = await store.finish_scan(job.scan_id, "failed", None, "analysis_error", now)
        assert first.status == second.status == "completed"
        assert await store.claim_analyses("a-3", 5, 1e9, LEASE_S) == []  # the job is gone
        done = await app.wait_for_run(run.id, timeout="1 minute")
    assert done.output["scan"]["status"] == "completed"
    assert done.output["scan"]["vitals"] == {"heart_rate_bpm": 70.0}


async def test_a_job_that_keeps_killing_its_analyser_fails_the_scan(
    make_app: AppFactory,
) -> None:
    upload, _ = trace_upload(70.0)
    async with make_app([HealthCheck]) as app:
        run = await app.trigger("health-check", {"p": 3})
        created = await _created(app, run.id)
        token_hash = hash_token(token_of(created["url"]))
        await app.store.accept_upload(
            token_hash, ("pending",), "trace", upload.decode(), app.clock.now()
        )
        for attempt in range(MAX_ATTEMPTS):  # each analyser died holding it
            await app.store.claim_analyses(f"a-{attempt}", 1, attempt * (LEASE_S + 1), LEASE_S)
        await analysis_drained(ScanService(app))
        done = await app.wait_for_run(run.id, timeout="1 minute")
    assert done.output["scan"]["status"] == "failed"
    assert done.output["scan"]["failure_reason"] == "analysis_error"


async def test_giving_up_finishes_only_a_scan_that_is_still_open(make_app: AppFactory) -> None:
    async with make_app([HealthCheck]) as app:
        uploaded = await app.trigger("health-check", {"p": 4})
        gave_up = await app.trigger("health-check", {"p": 5})
        first, second = await _created(app, uploaded.id), await _created(app, gave_up.id)
        store, now = app.store, app.clock.now()
        open_statuses = ("pending", "opened", "aligning", "capturing")
        upload_hash = hash_token(token_of(first["url"]))
        await store.accept_upload(upload_hash, open_statuses, "trace", "{}", now)
        assert (
            await store.finish_open_scan(upload_hash, open_statuses, "failed", None, "no_face", now)
            is None
        ), "an upload won: giving up changes nothing"
        assert (await store.get_scan(app.org, first["id"])).status == "processing"

        finished = await store.finish_open_scan(
            hash_token(token_of(second["url"])), open_statuses, "failed", None, "no_face", now
        )
        assert finished is not None and finished.status == "failed"
        done = await app.wait_for_run(gave_up.id, timeout="1 minute")
        late = await store.finish_open_scan(  # after expiry nothing can finish it either
            hash_token(token_of(second["url"])), open_statuses, "failed", None, "x", now + 1e6
        )
    assert done.output["scan"]["failure_reason"] == "no_face"
    assert late is None


async def test_a_video_upload_is_a_durable_job_too(make_app: AppFactory, tmp_path: Path) -> None:
    from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video

    video = tmp_path / "upload.y4m"
    truth = write_video(
        video, PulseSpec(heart_rate_bpm=81.0, seed=5), SceneSpec(duration_s=15.0, seed=5)
    )
    async with make_app([HealthCheck]) as app:
        run = await app.trigger("health-check", {"p": 6})
        created = await _created(app, run.id)
        accepting = ScanService(app, analyse=False)  # accepted, then the process died
        record = await accepting.open_for_upload(app, created["id"])
        view = await accepting.accept_video(record, video)
        assert view.status == "processing" and video.exists()  # kept until analysed
        assert video.read_bytes().startswith(MAGIC)  # sealed in place while it waits

        analysing = ScanService(app)
        await analysis_drained(analysing)
        done = await app.wait_for_run(run.id, timeout="1 minute")
    assert abs(done.output["scan"]["vitals"]["heart_rate_bpm"] - truth.heart_rate_bpm) < 2.0
    assert not video.exists()  # the file goes once its outcome is recorded


async def analysis_drained(service: ScanService) -> None:
    """Start ``service``'s analyser and wait until it has nothing left."""
    await service.start()
    await service.drain()


async def test_a_video_on_another_machine_is_left_for_its_analysers(
    make_app: AppFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    video = tmp_path / "elsewhere.webm"
    video.write_bytes(b"a video in another machine's folder")
    async with make_app([HealthCheck]) as app:
        run = await app.trigger("health-check", {"p": 7})
        created = await _created(app, run.id)
        accepting = ScanService(app, analyse=False)
        await accepting.accept_video(await accepting.open_for_upload(app, created["id"]), video)
        video.unlink()  # as seen from this machine: the path names nothing
        with caplog.at_level(logging.WARNING, logger="pulseloop.connectors.analysis"):
            await analysis_drained(ScanService(app))
        scan = await app.store.get_scan(app.org, created["id"])
    assert scan is not None and scan.status == "processing"  # not failed as unreadable
    assert any("PULSELOOP_UPLOAD_DIR" in r.getMessage() for r in caplog.records)
