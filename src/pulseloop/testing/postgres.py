"""A throwaway PostgreSQL server for tests and benchmarks, on 127.0.0.1 only.

``initdb`` into a fresh folder, ``pg_ctl start`` on a free port, ``pg_ctl stop`` at the
end (by its data folder: only the server this object started is stopped). PostgreSQL
refuses to run as root, so as root every server command runs as the ``postgres`` user
(``runuser -u postgres --``) and the folder is handed to that user.

Settings favour a test run and say so: ``fsync`` stays on (commits are real), but
``synchronous_commit=off`` is *not* set either, so the group-commit path is measured as a
deployment would see it. Only logging and checkpoints are relaxed
(``full_page_writes=off``: a crash of the test machine loses nothing we keep).

No driver is imported here: callers create databases with their own client.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresUnavailable", "ThrowawayPostgres", "find_bindir"]


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started (binaries missing, or it would not start)."""


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<v>/bin`` (Debian layout), or where ``initdb`` is."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on PATH); "
        "run scripts/install-postgres.sh (Debian package `postgresql`)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayPostgres:
    """One PostgreSQL server in a temporary folder; ``start()`` then ``stop()``."""

    def __init__(self, *, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="pulseloop-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_root = os.geteuid() == 0

    @property
    def user(self) -> str:
        """The database superuser (trust authentication on loopback)."""
        return "postgres"

    def url(self, dbname: str = "postgres") -> str:
        """A connection URL for ``dbname`` on this server."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, *args: str) -> list[str]:
        if self._as_root:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _run(self, *args: str) -> None:
        done = subprocess.run(self._cmd(*args), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"{Path(args[0]).name} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}"
            )

    def start(self) -> ThrowawayPostgres:
        """initdb and start the server; raise PostgresUnavailable if it does not come up."""
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user,
            "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        self.port = _free_port()
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                "-c max_connections=300",
                "-c full_page_writes=off",
                "-c shared_buffers=64MB",
                "-c log_min_messages=warning",
            ]
        )
        try:
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                "-o", options, "-w", "-t", "60", "start",
            )  # fmt: skip
        except PostgresUnavailable as exc:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            self.cleanup()
            raise PostgresUnavailable(f"{exc}\n{tail}") from None
        return self

    def restart(self, mode: str = "immediate") -> None:
        """Restart the server (``immediate``: like a crash; every connection drops)."""
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-m", mode, "-w", "-t", "60", "restart",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server this object started, and remove its folder."""
        if self.data.exists():
            with contextlib.suppress(PostgresUnavailable):
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                          "-w", "stop")  # fmt: skip
        self.cleanup()

    def cleanup(self) -> None:
        """Remove the server's folder."""
        shutil.rmtree(self.root, ignore_errors=True)
