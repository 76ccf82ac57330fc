"""A scan upload answered 202 is analysed even if the processes handling it are killed.

Before: the trace was analysed in an in-memory task of the server that accepted it; a
SIGKILL right after the 202 left the scan ``processing`` forever, its single-use link
spent, and the run waiting until its wait timed out. Here, for the page's trace and for a
``/v1`` video upload, real ``pulseloop server`` processes are killed twice: one that only
accepts uploads (``--no-analysis``) right after its 202, then one that analyses, as soon
as it has claimed the job (mid-analysis: its vitals pool is still starting). A third
server finishes the job and the parked run (in this process's worker) resumes with the
vitals.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest
from examples.health_check import HealthCheck

from pulseloop import App
from pulseloop.server.serve import free_port
from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video
from tests.api.conftest import make_key
from tests.cli.helpers import cli_env
from tests.connectors.scan_helpers import trace_upload
from tests.helpers import until_status

STEP = "Generate a health scan"


async def _server(db: Path, port: int, *options: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pulseloop.cli.main", "server", "--db", str(db),
        "--port", str(port), *options,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=cli_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    assert b"server ready" in line, line
    return proc


async def _kill(proc: asyncio.subprocess.Process) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()


def _job(db: Path) -> tuple[str, str | None] | None:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT scan_id, lease_owner FROM analysis_jobs").fetchone()
    finally:
        conn.close()
    return None if row is None else (row[0], row[1])


async def _upload(
    kind: str, port: int, created: dict[str, str], app: App, tmp_path: Path
) -> tuple[httpx.Response, float]:
    """POST the scan's upload to a server on ``port``: the page's trace through the scan
    link, or a face video through ``/v1`` with an API key. Returns the answer and the truth."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        if kind == "trace":
            upload, truth_bpm = trace_upload(78.0)
            token = created["url"].rsplit("/s/", 1)[1]
            answer = await client.post(
                f"/s/{token}/trace", content=upload, headers={"Content-Type": "application/json"}
            )
            return answer, truth_bpm
        video = tmp_path / "face.y4m"
        truth = write_video(  # a small face video: the analysis cost is not what is tested
            video,
            PulseSpec(heart_rate_bpm=78.0, seed=3),
            SceneSpec(duration_s=12.0, width=320, height=240, seed=3),
        )
        key = await make_key(app, app.org)
        answer = await client.post(
            f"/v1/scans/{created['id']}/video",
            content=video.read_bytes(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "video/x-yuv4mpeg"},
        )
        return answer, truth.heart_rate_bpm


@pytest.mark.crash
@pytest.mark.parametrize("kind", ["trace", "video"])
async def test_killed_servers_lose_no_accepted_upload(kind: str, tmp_path: Path) -> None:
    db = tmp_path / "scan.db"
    async with App([HealthCheck], f"sqlite:///{db}", poll_interval="50 milliseconds") as app:
        run = await app.trigger("health-check", {"patientId": "p-9"})
        await until_status(app, run.id, "waiting")
        created = (await app.get_run(run.id)).step(STEP).output

        port = free_port()
        accepting = await _server(db, port, "--no-analysis")
        answer, truth_bpm = await _upload(kind, port, created, app, tmp_path)
        assert answer.status_code == 202, answer.text
        await _kill(accepting)  # right after the 202
        job = _job(db)
        assert job is not None and job[1] is None, "the upload was stored as an unclaimed job"

        analysing = await _server(db, free_port())
        while (job := _job(db)) is not None and job[1] is None:
            await asyncio.sleep(0.01)
        await _kill(analysing)  # it claimed the job: mid-analysis
        scan = await app.store.get_scan(app.org, job[0] if job else "")
        assert scan is not None and scan.status == "processing", "killed before it finished"

        finisher = await _server(db, free_port())
        try:
            done = await app.wait_for_run(run.id, timeout="2 minutes")
        finally:
            os.kill(finisher.pid, signal.SIGTERM)
            await finisher.wait()
    assert done.status == "completed"
    assert done.output["patientId"] == "p-9"
    assert abs(done.output["heartRate"] - truth_bpm) < 2.0
    assert _job(db) is None
