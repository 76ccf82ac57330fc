"""The CLI on a PostgreSQL URL: a real worker process, triggers and reads from others."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import cli_env, run_cli
from tests.pg import MASTER_KEY, SECRET_KEY, PgServer


@pytest.fixture
def pg_url(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh migrated database; the shared scan-link key is set for every process."""
    monkeypatch.setenv("PULSELOOP_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("PULSELOOP_MASTER_KEY", MASTER_KEY)
    url = pg_server.create_database()
    try:
        yield url
    finally:
        pg_server.drop_database(url)


def test_worker_trigger_and_runs_on_postgres(tmp_path: Path, loop_file: Path, pg_url: str) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "pulseloop.cli.main", "worker", str(loop_file), "--db", pg_url,
         "--poll", "100 milliseconds"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=cli_env(),
    )  # fmt: skip
    try:
        assert worker.stdout is not None
        assert "ready" in worker.stdout.readline()
        queued = run_cli(
            "trigger", "greet", "--app", str(loop_file), "--body", '{"name": "pg"}',
            "--id", "pg-1", "--db", pg_url, "--json", cwd=tmp_path,
        )  # fmt: skip
        assert queued.returncode == 0, queued.stderr
        for _ in range(600):  # the worker process runs it
            shown = run_cli("runs", "show", "pg-1", "--db", pg_url, "--json", cwd=tmp_path)
            assert shown.returncode == 0, shown.stderr
            run = json.loads(shown.stdout)
            if run["status"] == "completed":
                break
        assert run["output"] == {"greeting": "hello pg"}
        assert [s["name"] for s in run["steps"]] == ["say hello"]
    finally:
        os.kill(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
        assert worker.stdout is not None
        worker.stdout.close()
    assert worker.returncode == 0


def test_worker_without_the_secret_key_says_which_setting(
    tmp_path: Path, loop_file: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PULSELOOP_SECRET_KEY")
    done = run_cli("worker", str(loop_file), "--db", pg_url, cwd=tmp_path)
    assert done.returncode == 2
    assert "PULSELOOP_SECRET_KEY" in done.stderr
    assert "Traceback" not in done.stderr


def test_worker_without_the_master_key_says_which_setting(
    tmp_path: Path, loop_file: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PULSELOOP_MASTER_KEY")
    done = run_cli("worker", str(loop_file), "--db", pg_url, cwd=tmp_path)
    assert done.returncode == 2
    assert "PULSELOOP_MASTER_KEY is not set" in done.stderr
    assert "Traceback" not in done.stderr
