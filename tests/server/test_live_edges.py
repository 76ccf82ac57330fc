"""Against REAL servers on 127.0.0.1: memory bombs refused early (RSS measured from
/proc), stalled connections closed, ``pulseloop dev``'s one stable key, and its console
printing user text literally, never as Rich markup.

``pulseloop dev`` runs as a child process (its RSS is its own); the timer tests run
uvicorn in a thread with short timers (``timed_protocol``), and wait on the socket (a
read with a generous timeout), never with sleep.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import uvicorn
from rich.console import Console

from pulseloop import App
from pulseloop.cli.serve import DevConsole
from pulseloop.server.app import create_app
from pulseloop.server.protocol import timed_protocol
from pulseloop.server.serve import free_port, uvicorn_config
from tests.cli.helpers import cli_env

LOOP_FILE = """
from pulseloop import Loop


class Bomb(Loop):
    name = "bomb"

    async def run(self, event, step):
        async def provision(ctx):
            return await ctx.FACIAL_SCAN.create(expires_in=3600, metadata={})

        await step.do("scan", provision)
        return await step.wait_for_scan(timeout="1 hour")
"""
KEY = re.compile(r"API key \(kept in (?P<file>[^)]+)\): (?P<key>pl_[0-9a-f]+_[A-Za-z0-9_-]+)")
MIB = 1024 * 1024
MAX_GROWTH = 50 * MIB
SOCKET_WAIT_S = 30.0  # a guard against hanging, not a measured time


@dataclass
class Dev:
    """A ``pulseloop dev`` process: its pid, URL, key and key file."""

    process: subprocess.Popen[str]
    url: str
    port: int
    key: str
    key_file: Path

    def rss(self) -> int:
        """The server's resident memory, in bytes (VmRSS of /proc/<pid>/status)."""
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(r"VmRSS:\s+(\d+) kB", text)
        assert found is not None
        return int(found.group(1)) * 1024

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=SOCKET_WAIT_S) as response:
            return json.loads(response.read())


def start_dev(tmp_path: Path, port: int) -> Dev:
    """Start ``pulseloop dev`` on ``port`` over ``tmp_path/dev.db``; return once it serves."""
    (tmp_path / "bomb.py").write_text(LOOP_FILE)
    process = subprocess.Popen(
        [sys.executable, "-m", "pulseloop.cli.main", "dev", str(tmp_path / "bomb.py"),
         "--db", str(tmp_path / "dev.db"), "--port", str(port), "--no-analysis"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**cli_env(), "COLUMNS": "400"},
    )  # fmt: skip
    assert process.stdout is not None
    key = None
    for line in process.stdout:
        found = KEY.search(line)
        if found:
            key = found
        if "ready; press Ctrl-C" in line:
            break
    assert key is not None, "pulseloop dev printed no API key"
    return Dev(process, f"http://127.0.0.1:{port}", port, key["key"], Path(key["file"]))


def stop(process: subprocess.Popen[str]) -> None:
    """SIGINT (Ctrl-C) the process we started and wait for it."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    server = start_dev(tmp_path_factory.mktemp("dev"), free_port())
    try:
        yield server
    finally:
        stop(server.process)


def bomb(port: int, head: bytes, chunk: bytes, total: int) -> bytes:
    """Send ``head`` then up to ``total`` bytes of ``chunk``s, stopping as soon as the
    server answers; return its answer (what it sent before closing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_WAIT_S) as sock:
        sock.sendall(head)
        sent = 0
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        assert sent < total, "the server read the whole bomb without answering"
        answer = b""
        while b"\r\n\r\n" not in answer:
            part = sock.recv(65536)
            if not part:
                break
            answer += part
        return answer


def chunked(data: bytes) -> bytes:
    """One chunk of HTTP chunked transfer encoding."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_a_1_gb_sign_in_form_is_refused_before_it_is_read(dev: Dev) -> None:
    before = dev.rss()
    head = (b"POST /dashboard/sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
    answer = bomb(dev.port, head, chunked(b"key=" + b"a" * (MIB - 4)), 1024 * MIB)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    growth = dev.rss() - before
    print(f"sign-in bomb: RSS grew {growth / MIB:.1f} MiB")
    assert growth < MAX_GROWTH


def test_a_huge_trace_is_refused_before_it_is_read(dev: Dev) -> None:
    run = dev.call("POST", "/v1/loops/bomb/runs", {})
    token = None
    for _ in range(600):  # until the worker has provisioned the scan
        shown = dev.call("GET", f"/v1/runs/{run['id']}")
        if shown["status"] == "waiting":
            token = shown["steps"][0]["output"]["url"].rsplit("/s/", 1)[1]
            break
        select.select([], [], [], 0.05)  # a short wait between looks
    assert token is not None
    before = dev.rss()
    head = (
        f"POST /s/{token}/trace HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    answer = bomb(dev.port, head, chunked(b"[" + b"0," * (MIB // 2 - 1)), 1024 * MIB)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    growth = dev.rss() - before
    print(f"trace bomb: RSS grew {growth / MIB:.1f} MiB")
    assert growth < MAX_GROWTH


def test_a_huge_video_is_refused_before_it_is_read(dev: Dev) -> None:
    before = dev.rss()
    head = (b"POST /v1/scans/any/video HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + dev.key.encode() + b"\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Length: " + str(1024 * MIB).encode() + b"\r\n\r\n")  # fmt: skip
    answer = bomb(dev.port, head, b"\0" * MIB, 1024 * MIB)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    growth = dev.rss() - before
    print(f"video bomb: RSS grew {growth / MIB:.1f} MiB")
    assert growth < MAX_GROWTH


def test_the_dev_key_is_the_same_at_every_start(tmp_path: Path) -> None:
    first = start_dev(tmp_path, free_port())
    stop(first.process)
    second = start_dev(tmp_path, free_port())
    try:
        assert second.key == first.key
        assert second.key_file == first.key_file == tmp_path / "dev.db.dev-key"
        assert stat.S_IMODE(os.stat(second.key_file).st_mode) == 0o600
        assert second.key_file.read_text().strip() == second.key
        assert second.call("GET", "/v1/runs")["runs"] == []  # and it works
    finally:
        stop(second.process)


# ---- timers: uvicorn in a thread with short timeouts ---------------------------------------
@dataclass
class Live:
    port: int
    server: uvicorn.Server


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    port = free_port()
    ready = threading.Event()
    holder: dict[str, uvicorn.Server] = {}

    async def main() -> None:
        async with App([], f"sqlite:///{tmp_path / 'live.db'}", worker=False) as app:
            api = create_app(app, body_read_timeout_s=0.5)
            config = uvicorn_config(api, port=port, log_level="warning",
                                    protocol=timed_protocol(0.5, linger_s=0.5))  # fmt: skip
            server = uvicorn.Server(config)
            holder["server"] = server
            task = asyncio.create_task(server.serve())
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            ready.set()
            await task

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(30)
    yield Live(port, holder["server"])
    holder["server"].should_exit = True
    thread.join(30)


def closed_by_server(sock: socket.socket) -> bytes:
    """Read until the server closes the connection; what it sent (raises on the guard)."""
    sock.settimeout(SOCKET_WAIT_S)
    got = b""
    while True:
        part = sock.recv(65536)
        if not part:
            return got
        got += part


@pytest.mark.parametrize(
    "sent", [b"", b"GET / HTTP/1.1\r\n", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1"]
)
def test_a_connection_without_complete_headers_is_closed(live: Live, sent: bytes) -> None:
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        sock.sendall(sent)
        assert closed_by_server(sock) == b""  # closed, not answered


def test_a_body_that_stops_arriving_is_408_and_closed(live: Live) -> None:
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        sock.sendall(b"POST /dashboard/sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100\r\n\r\nkey=")  # fmt: skip
        answer = closed_by_server(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"request_timeout" in answer


def test_a_refused_body_still_streaming_is_closed_after_the_answer(live: Live) -> None:
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        sock.sendall(b"POST /dashboard/sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Length: 99999999\r\n\r\n")  # fmt: skip
        sock.settimeout(SOCKET_WAIT_S)
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413 ")
        try:  # the server would read and discard for ever; it closes instead
            while sock.recv(65536) or True:
                sock.sendall(b"x" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except OSError as exc:  # the guard timing out is a failure
            raise AssertionError(f"the connection stayed open: {exc!r}") from exc


# ---- the dev console prints user text, never markup ---------------------------------------
class _Worker:
    id = "w-[bold]1"
    versions: ClassVar[dict[str, str]] = {"[/bold]loop[link=https://evil.example]x": "[red]v1"}


class _Pulse:
    worker = _Worker()


def test_the_dev_console_prints_markup_like_text_literally() -> None:
    from pulseloop.cli.loading import LoadedApp

    reporter = DevConsole(LoadedApp("app.py", {}), "sqlite:///x.db")
    out = io.StringIO()
    reporter.out = Console(file=out, width=300, color_system=None, highlight=False)
    reporter.ready(_Pulse())  # type: ignore[arg-type]
    reporter.api_key("[/bold]org", "pl_[bold]key", "http://127.0.0.1:8000", Path("k"))
    reporter._closing = True
    reporter.settled(_Pulse(), "run-[/bold][link=https://evil.example]x", "completed")  # type: ignore[arg-type]
    text = out.getvalue()
    literals = (
        "[/bold]loop[link=https://evil.example]x",
        "[red]v1",
        "w-[bold]1",
        "[/bold]org",
        "pl_[bold]key",
        "run-[/bold][link=https://evil.example]x",
    )
    for literal in literals:
        assert literal in text, (literal, text)
