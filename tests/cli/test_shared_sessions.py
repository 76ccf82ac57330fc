"""Dashboard sign-ins across real ``pulseloop server`` processes on one database.

Two servers (uvicorn, separate processes) share a SQLite file or a PostgreSQL database: a
session made through one is honoured by the other and after a restart; sign-out and key
revocation end it in both; failed sign-ins count across both.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pulseloop.server.serve import free_port
from pulseloop.server.sessions import SIGN_IN_FAILURES
from tests.cli.helpers import run_cli
from tests.cli.test_serve import _read_until, start

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
COOKIE = "pulseloop_session"


class Server:
    """One ``pulseloop server`` process on a port of its own."""

    def __init__(self, db_url: str, cwd: Path, started: list[subprocess.Popen[str]]) -> None:
        self.db_url, self.cwd, self.started = db_url, cwd, started
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = self._start()

    def _start(self) -> subprocess.Popen[str]:
        process = start(["server", "--db", self.db_url, "--port", str(self.port)], self.cwd)
        self.started.append(process)
        _read_until(process, "server ready")
        return process

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        _, errors = self.process.communicate()
        assert self.process.returncode == 0, errors

    def restart(self) -> None:
        self.stop()
        self.process = self._start()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; any still alive at the end are killed by pid."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def new_key(db_url: str, cwd: Path) -> str:
    """A new API key of clinic-a, made by the CLI."""
    run_cli("orgs", "create", "clinic-a", "--db", db_url, cwd=cwd)
    made = run_cli("keys", "create", "--org", "clinic-a", "--db", db_url, cwd=cwd)
    assert made.returncode == 0, made.stderr
    found = re.search(r"pl_[0-9a-f]+_\S+", made.stdout)
    assert found is not None, made.stdout
    return found.group(0)


def attempt_sign_in(server: Server, key: str) -> httpx.Response:
    """Post ``key`` to ``server``'s sign-in form (with the form's own CSRF cookie)."""
    with server.client() as client:
        form = client.get("/dashboard/sign-in")
        csrf = CSRF.search(form.text)
        assert csrf is not None, form.text
        return client.post("/dashboard/sign-in", data={"key": key, "csrf": csrf.group(1)})


def runs_page(server: Server, token: str) -> httpx.Response:
    """``/dashboard/runs`` on ``server`` with the session cookie ``token``."""
    with server.client() as client:
        return client.get("/dashboard/runs", headers={"Cookie": f"{COOKIE}={token}"})


def signed_in(server: Server, key: str) -> str:
    """Sign in on ``server``; the session cookie's token."""
    response = attempt_sign_in(server, key)
    assert response.status_code == 303, response.text
    token = response.cookies[COOKIE]
    assert runs_page(server, token).status_code == 200
    return token


def test_a_session_is_honoured_by_every_server_and_ends_everywhere(
    db_url: str, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    key = new_key(db_url, tmp_path)
    one, two = Server(db_url, tmp_path, processes), Server(db_url, tmp_path, processes)
    token = signed_in(one, key)
    assert runs_page(two, token).status_code == 200  # another process
    one.restart()
    assert runs_page(one, token).status_code == 200  # a restarted process
    page = runs_page(two, token)
    csrf = CSRF.search(page.text)
    assert csrf is not None
    with two.client() as client:
        out = client.post(
            "/dashboard/sign-out",
            data={"csrf": csrf.group(1)},
            headers={"Cookie": f"{COOKIE}={token}"},
        )
    assert out.status_code == 303
    for server in (one, two):  # signed out through two: ended in both
        refused = runs_page(server, token)
        assert (refused.status_code, refused.headers["location"]) == (303, "/dashboard/sign-in")

    again = signed_in(one, key)
    assert runs_page(two, again).status_code == 200
    key_id = key.split("_")[1]
    revoked = run_cli("keys", "revoke", key_id, "--db", db_url, cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    for server in (one, two):  # revoked by a third process: ended in both
        assert runs_page(server, again).status_code == 303
    one.stop()
    two.stop()


def test_failed_sign_ins_count_across_servers(
    db_url: str, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    key = new_key(db_url, tmp_path)
    key_id = key.split("_")[1]
    servers = [Server(db_url, tmp_path, processes), Server(db_url, tmp_path, processes)]
    for n in range(SIGN_IN_FAILURES):  # alternate: each server alone sees half of them
        guess = attempt_sign_in(servers[n % 2], f"pl_{key_id}_guess{n}")
        assert guess.status_code == 401, n
    for server in servers:  # even the right key, on either server
        refused = attempt_sign_in(server, key)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) > 0
    for server in servers:
        server.stop()
