"""``pulseloop dev`` and ``pulseloop worker``: serve an APP's loops in the foreground.

Both run one in-process worker until SIGINT (Ctrl-C) or SIGTERM, then close the App, which
hands runs in flight back to the database so another worker (or this one, restarted)
continues them. ``worker`` is the production shape: plain log lines on stderr and one
``worker <id> ready`` line on stdout once it claims work, which tests and supervisors wait
for. ``dev`` adds a table of what it serves and a line per run as it settles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.style import Style
from rich.table import Table
from rich.text import Text

from pulseloop.app import App
from pulseloop.cli.common import (
    DbOption,
    database_url,
    duration_option,
    run_async,
    user_errors,
)
from pulseloop.cli.loading import LoadedApp, load_app
from pulseloop.cli.orgs import issue_key
from pulseloop.cli.render import console, status_text
from pulseloop.connectors.facial_scan import ScanService, scan_url
from pulseloop.durations import format_duration
from pulseloop.errors import PulseloopError
from pulseloop.keys import hash_api_key
from pulseloop.store import sqlite_path

log = logging.getLogger("pulseloop.cli")

AppArgument = Annotated[
    str, typer.Argument(help="The loops to serve: path/to/file.py or module:attr.", metavar="APP")
]
_QUIET_STATUSES = frozenset({"aborted", "queued"})  # handed back or re-queued: not news


class Reporter:
    """What a serving command tells its user. Every hook runs on the event loop."""

    def ready(self, pulse: App) -> None:
        """The worker has started; ``pulse.worker`` is set."""

    def settled(self, pulse: App, run_id: str, status: str) -> None:
        """A run stopped executing with ``status`` (must not block)."""

    async def drain(self) -> None:
        """Finish reporting before the App closes; later ``settled`` calls may be dropped."""

    def stopped(self) -> None:
        """The App is closed."""


class WorkerLog(Reporter):
    """``pulseloop worker``: log lines on stderr, one ``worker <id> ready`` line on stdout."""

    def __init__(self, url: str) -> None:
        self.url = url

    def ready(self, pulse: App) -> None:
        if pulse.worker is None:  # ``pulseloop server``: HTTP only
            sys.stdout.write(f"server ready on {pulse.settings.public_url}\n")
            sys.stdout.flush()
            return
        for name, version in sorted(pulse.worker.versions.items()):
            log.info("serving %s version %s on %s", name, version, self.url)
        sys.stdout.write(f"worker {pulse.worker.id} ready\n")
        sys.stdout.flush()

    def settled(self, pulse: App, run_id: str, status: str) -> None:
        log.info("run %s %s", run_id, status)

    def stopped(self) -> None:
        log.info("worker stopped; runs in flight were handed back")


class DevConsole(Reporter):
    """``pulseloop dev``: a table of what is served, then a line per settled run."""

    def __init__(self, loaded: LoadedApp, url: str) -> None:
        self.loaded = loaded
        self.url = url
        self.out = console()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    def ready(self, pulse: App) -> None:
        assert pulse.worker is not None
        count = len(self.loaded.loops)
        self.out.print(
            Text.assemble(("pulseloop dev", "bold"), f" serving {count} loop(s) on {self.url}")
        )
        served = Table(box=None, padding=(0, 2), header_style="dim")
        served.add_column("loop")
        served.add_column("version")
        for name, version in sorted(pulse.worker.versions.items()):
            served.add_row(Text(name), Text(version))
        self.out.print(served)
        self.out.print(Text(f"worker {pulse.worker.id} ready; press Ctrl-C to stop"))

    def api_key(self, org: str, key: str, url: str, kept_in: Path | None = None) -> None:
        """Show the development key of ``dev``'s organization (the same at every start)."""
        self.out.print(
            Text.assemble(f"API on {url}/v1 (docs: {url}/docs); organization ", (org, "bold"))
        )
        where = f" (kept in {kept_in})" if kept_in is not None else ""
        self.out.print(Text(f"API key{where}: {key}"), soft_wrap=True)

    def settled(self, pulse: App, run_id: str, status: str) -> None:
        # Run ids, loop names and links are user text: printed as Text, never as markup
        # (a run id "[link=...]" would render, "[/bold]" would raise and lose the line).
        if self._closing:
            self.out.print(Text(f"run {run_id} "), status_text(status), sep="")
            return
        task = asyncio.create_task(self._describe(pulse, run_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _describe(self, pulse: App, run_id: str) -> None:
        with contextlib.suppress(PulseloopError):
            run = await pulse.get_run(run_id)
            when = datetime.now().strftime("%H:%M:%S")
            took = ""
            if run.finished_at is not None:
                took = f" in {format_duration(run.finished_at - run.created_at)}"
            self.out.print(
                Text(f"{when} run {run.id} ({run.loop}) "), status_text(run.status), Text(took),
                sep="",
            )  # fmt: skip
            scan = await pulse.latest_scan(run_id)
            if run.status == "waiting" and scan is not None and scan.status == "pending":
                link = scan_url(pulse, scan)
                self.out.print(
                    Text("         scan link: "), Text(link, style=Style(link=link)), sep=""
                )

    async def drain(self) -> None:
        self._closing = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def stopped(self) -> None:
        self.out.print(Text("stopped; runs in flight were handed back"))


HostOption = Annotated[
    str, typer.Option("--host", help="Address to serve HTTP on (scan pages).", metavar="HOST")
]
PortOption = Annotated[
    int, typer.Option("--port", min=1, max=65535, help="Port to serve HTTP on.", metavar="PORT")
]
AnalysisOption = Annotated[
    bool,
    typer.Option(
        "--analysis/--no-analysis",
        help="Analyse accepted scan uploads in this process (needs the vitals extra); "
        "with --no-analysis uploads are stored for other processes to analyse.",
    ),
]


def dev(
    app_path: AppArgument,
    db: DbOption = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    analysis: AnalysisOption = True,
) -> None:
    """Serve APP's loops and the scan pages in one process for development; Ctrl-C stops.

    Prints each provisioned scan's link, so a person can do the scan with a webcam or phone
    (set PULSELOOP_PUBLIC_URL to an address the phone can reach).
    """
    with user_errors():
        loaded = load_app(app_path)
        url = database_url(db)
    reporter = DevConsole(loaded, url)
    run_async(
        _serve(loaded, url, reporter, poll="100 milliseconds", http=(host, port), analysis=analysis)
    )
    reporter.stopped()


def server(
    db: DbOption = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    analysis: AnalysisOption = True,
) -> None:
    """Serve the scan pages (no worker): patients' uploads are analysed here (or, with
    --no-analysis, by any other process that analyses), and the waiting runs are woken
    for the workers to continue."""
    with user_errors():
        url = database_url(db)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    run_async(
        _serve(
            LoadedApp("", {}), url, WorkerLog(url), http=(host, port), run_worker=False,
            analysis=analysis,
        )
    )  # fmt: skip


def worker(
    app_path: AppArgument,
    db: DbOption = None,
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", min=1, help="Runs executed at the same time.", metavar="N"),
    ] = 100,
    lease: Annotated[
        str,
        typer.Option(
            "--lease",
            help="How long a claimed run is ours without a heartbeat.",
            metavar="DURATION",
        ),
    ] = "10 seconds",
    poll: Annotated[
        str,
        typer.Option(
            "--poll", help="How often to look for work nobody announced.", metavar="DURATION"
        ),
    ] = "500 milliseconds",
) -> None:
    """Run a worker for APP's loops (production; stops cleanly on SIGTERM or Ctrl-C)."""
    with user_errors():
        loaded = load_app(app_path)
        lease_s = duration_option(lease, "--lease").total_seconds()
        poll_s = duration_option(poll, "--poll").total_seconds()
        url = database_url(db)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    reporter = WorkerLog(url)
    run_async(_serve(loaded, url, reporter, concurrency=concurrency, lease=lease_s, poll=poll_s))
    reporter.stopped()


async def _serve(
    loaded: LoadedApp,
    url: str,
    reporter: Reporter,
    *,
    concurrency: int = 100,
    lease: float | str = "10 seconds",
    poll: float | str = "500 milliseconds",
    http: tuple[str, int] | None = None,
    run_worker: bool = True,
    analysis: bool = True,
) -> None:
    """Serve until SIGINT/SIGTERM, reporting runs as they settle; always close the App."""
    public_url = None
    if http is not None and not os.environ.get("PULSELOOP_PUBLIC_URL"):
        public_url = f"http://{http[0]}:{http[1]}"
    pulse = App(
        list(loaded.loops.values()), url, concurrency=concurrency, lease=lease,
        poll_interval=poll, public_url=public_url, worker=run_worker,
    )  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)

    def on_settled(run_id: str, status: str) -> None:
        if status not in _QUIET_STATUSES:
            reporter.settled(pulse, run_id, status)

    pulse.on_settled = on_settled
    try:
        await pulse.open()
        async with contextlib.AsyncExitStack() as stack:
            if http is not None:
                # the HTTP stack (FastAPI, uvicorn, templates) loads only when serving HTTP:
                # `pulseloop worker` must start fast and run without it
                from pulseloop.server.app import create_app
                from pulseloop.server.serve import serving

                service = ScanService(pulse, analyse=analysis)
                served = await stack.enter_async_context(
                    serving(create_app(pulse, scan_service=service), host=http[0], port=http[1])
                )
                log.info("scan pages on %s", served)
                if isinstance(reporter, DevConsole):
                    await pulse.store.ensure_org(pulse.org, time.time())
                    key_file = dev_key_path(url)
                    key = await dev_key(pulse, key_file)
                    reporter.api_key(pulse.org, key, served, key_file)
            reporter.ready(pulse)
            await stop.wait()
    finally:
        await reporter.drain()
        await pulse.close()
        for signum in signals:
            loop.remove_signal_handler(signum)


DEV_KEY_SUFFIX = ".dev-key"


def dev_key_path(url: str) -> Path:
    """Where ``pulseloop dev`` keeps its API key: beside a SQLite file, else in the
    working directory (``.pulseloop.dev-key``)."""
    path = sqlite_path(url)
    if path is not None and path != ":memory:":
        return Path(path).with_name(Path(path).name + DEV_KEY_SUFFIX)
    return Path.cwd() / f".pulseloop{DEV_KEY_SUFFIX}"


async def dev_key(pulse: App, key_file: Path) -> str:
    """The development API key of ``pulse``'s organization: the one in ``key_file`` while
    it is still valid there, else a new one written to ``key_file`` (mode 0600).

    One stable key, not a new one at each start: every restart used to leave another live
    key behind in the database.
    """
    try:
        kept = key_file.read_text().strip()
    except (FileNotFoundError, UnicodeDecodeError):
        kept = ""
    if kept:
        record = await pulse.store.key_by_hash(hash_api_key(kept))
        if record is not None and record.revoked_at is None and record.org == pulse.org:
            return kept
    _, key = await issue_key(pulse.store, pulse.org)
    _write_private(key_file, key + "\n")
    return key


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (atomically: never a moment
    where the file holds half a key or other users may read it)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask cannot widen it; an old file's mode is replaced
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)
