"""``pulseloop worker`` and ``dev`` as real processes: serve, settle runs, stop on a signal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulseloop.server.serve import free_port
from tests.cli.helpers import cli_env, invoke, run_cli

POLL_ATTEMPTS = 600


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pulseloop.cli.main", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; any still alive at the end are killed by pid."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def wait_for_status(db: Path, run_id: str, status: str, cwd: Path) -> dict[str, Any]:
    """Poll ``runs show --json`` until the run has ``status``; fail naming what was seen."""
    seen: list[str] = []
    for _ in range(POLL_ATTEMPTS):
        shown = run_cli("runs", "show", run_id, "--db", str(db), "--json", cwd=cwd)
        assert shown.returncode == 0, shown.stderr
        run: dict[str, Any] = json.loads(shown.stdout)
        if run["status"] == status:
            return run
        seen.append(run["status"])
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never became {status}; it was {seen[-5:]}")


def test_worker_serves_runs_triggered_elsewhere_and_stops_on_sigterm(
    tmp_path: Path, loop_file: Path, processes: list[subprocess.Popen[str]]
) -> None:
    db = tmp_path / "runs.db"
    worker = start(
        ["worker", str(loop_file), "--db", str(db), "--lease", "1 second", "--poll", "0.1"],
        tmp_path,
    )
    processes.append(worker)
    assert worker.stdout is not None
    ready = worker.stdout.readline()
    assert ready.startswith("worker w-"), ready
    assert ready.rstrip().endswith(" ready")

    triggered = run_cli(
        "trigger", "greet", "--app", str(loop_file), "--body", '{"name": "ada"}',
        "--id", "from-shell", "--db", str(db), cwd=tmp_path,
    )  # fmt: skip
    assert triggered.returncode == 0, triggered.stderr
    run = wait_for_status(db, "from-shell", "completed", tmp_path)
    assert run["output"] == {"greeting": "hello ada"}

    worker.send_signal(signal.SIGTERM)
    _, errors = worker.communicate()
    assert worker.returncode == 0, errors
    assert "Traceback" not in errors
    assert "run from-shell completed" in errors


def test_dev_prints_what_it_serves_and_logs_settled_runs(
    tmp_path: Path, loop_file: Path, processes: list[subprocess.Popen[str]]
) -> None:
    db = tmp_path / "dev.db"
    dev = start(["dev", str(loop_file), "--db", str(db), "--port", str(free_port())], tmp_path)
    processes.append(dev)
    assert dev.stdout is not None
    banner = [dev.stdout.readline()]
    while "ready" not in banner[-1] and banner[-1] and len(banner) < 20:
        banner.append(dev.stdout.readline())
    text = "".join(banner)
    assert "ready" in banner[-1], text
    assert str(db) in text
    for loop in ("greet", "await-reply", "needs-file"):
        assert loop in text

    triggered = run_cli(
        "trigger", "greet", "--app", str(loop_file), "--body", '{"name": "bo"}',
        "--id", "dev-1", "--db", str(db), cwd=tmp_path,
    )  # fmt: skip
    assert triggered.returncode == 0, triggered.stderr
    logged = dev.stdout.readline()
    assert "dev-1" in logged
    assert "completed" in logged

    dev.send_signal(signal.SIGINT)
    out, errors = dev.communicate()
    assert dev.returncode == 0, errors
    assert "stopped" in out
    assert "Traceback" not in errors


@pytest.mark.parametrize("command", ["dev", "worker"])
def test_serving_an_app_that_does_not_load_is_exit_2(tmp_path: Path, command: str) -> None:
    app = tmp_path / "empty.py"
    app.write_text("VALUE = 1\n")
    db = tmp_path / "runs.db"
    result = invoke(command, str(app), "--db", str(db))
    assert result.exit_code == 2
    assert "defines no loop" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not db.exists()


def test_worker_refuses_a_bad_lease(tmp_path: Path, loop_file: Path) -> None:
    db = tmp_path / "runs.db"
    result = invoke("worker", str(loop_file), "--lease", "a while", "--db", str(db))
    assert result.exit_code == 2
    assert "--lease" in result.stderr
    assert not db.exists()


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _read_until(process: subprocess.Popen[str], needle: str, limit: int = 60) -> list[str]:
    assert process.stdout is not None
    lines = [process.stdout.readline()]
    while needle not in lines[-1] and lines[-1] and len(lines) < limit:
        lines.append(process.stdout.readline())
    assert needle in lines[-1], "".join(lines)
    return lines


def test_dev_serves_the_scan_page_and_prints_each_scan_link(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    db, port = tmp_path / "dev.db", free_port()
    app_file = str(EXAMPLES / "health_check.py")
    dev = start(["dev", app_file, "--db", str(db), "--port", str(port)], tmp_path)
    processes.append(dev)
    _read_until(dev, "ready")
    body = '{"patientId": "p-9", "phoneNumber": "+15550100"}'
    triggered = run_cli(
        "trigger", "health-check", "--app", app_file, "--body", body, "--id", "scan-1",
        "--db", str(db), cwd=tmp_path,
    )  # fmt: skip
    assert triggered.returncode == 0, triggered.stderr
    link = _read_until(dev, "scan link:")[-1].split("scan link:")[1].strip()
    assert link.startswith(f"http://127.0.0.1:{port}/s/")
    with urllib.request.urlopen(link, timeout=30) as page:
        html = page.read().decode()
    assert page.status == 200
    assert "capture.js" in html
    dev.send_signal(signal.SIGINT)
    _, errors = dev.communicate()
    assert dev.returncode == 0, errors
    assert "/s/" + link.rsplit("/s/", 1)[1] not in errors  # the token never reaches a log


def test_server_serves_scan_pages_alone(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    server = start(["server", "--db", str(tmp_path / "s.db"), "--port", str(port)], tmp_path)
    processes.append(server)
    _read_until(server, "server ready")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/s/no-such-token-here", headers={"Accept": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(request, timeout=30)
    assert missing.value.code == 404
    assert json.loads(missing.value.read())["code"] == "scan_not_found"
    missing.value.close()
    server.send_signal(signal.SIGTERM)
    server.communicate()
    assert server.returncode == 0
