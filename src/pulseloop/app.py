"""The embedding API: what tests, the CLI, the server and users' own services call.

app = App(loops=[HealthCheck], database_url="sqlite:///runs.db")
async with app:                 # opens the store, runs an in-process worker
    run = await app.trigger("health-check", {"patientId": "p1"})
    run = await app.wait_for_run(run.id, timeout="1 minute")
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from pulseloop.config import Settings
from pulseloop.connectors.facial_scan import FacialScanConnector
from pulseloop.connectors.tokens import load_secret
from pulseloop.durations import Duration, duration_seconds
from pulseloop.engine.clock import Clock, SystemClock
from pulseloop.engine.codec import encode
from pulseloop.engine.context import ConnectorFactory
from pulseloop.engine.deadlines import run_timeout_s
from pulseloop.engine.loop import Loop, loop_name
from pulseloop.engine.worker import Worker, wait_event
from pulseloop.errors import InvalidRunId, LoopNotFound, PulseloopError, RunNotFound
from pulseloop.runs import Deploy, Run, build_deploy, build_run
from pulseloop.schedules import Schedules
from pulseloop.store import open_store, sqlite_path
from pulseloop.store.base import TERMINAL_STATUSES, RunRecord, Store

MAX_RUN_ID_CHARS = 200
RUN_ID_CHARS = "A-Z a-z 0-9 . _ ~ : -"
"""What a run id given to trigger may hold: URL-safe without escaping (RFC 3986
unreserved, plus ``:``), so ids read the same in URLs, logs and shells."""
_RUN_ID = re.compile(rf"[A-Za-z0-9._~:-]{{1,{MAX_RUN_ID_CHARS}}}")
_SETTLE_POLL_S = 0.05
_SETTLE_POLL_MAX_S = 1.0


class App:
    """A set of loops bound to a database and an organization, with an optional worker."""

    def __init__(
        self,
        loops: Sequence[type[Loop]] = (),
        database_url: str | None = None,
        *,
        org: str | None = None,
        clock: Clock | None = None,
        worker: bool = True,
        concurrency: int = 100,
        lease: Duration = "10 seconds",
        poll_interval: Duration = "500 milliseconds",
        connectors: Mapping[str, ConnectorFactory] | None = None,
        only_run: str | None = None,
        public_url: str | None = None,
        on_settled: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = Settings.load(database_url=database_url, public_url=public_url, org=org)
        self.loops: dict[str, type[Loop]] = {}
        for cls in loops:
            if not (isinstance(cls, type) and issubclass(cls, Loop)):
                raise PulseloopError(f"{cls!r} is not a Loop subclass; pass loop classes")
            name = loop_name(cls)
            if name in self.loops and self.loops[name] is not cls:
                raise PulseloopError(f"two loops are named {name!r}; set `name = ...` on one")
            self.loops[name] = cls
        self.clock: Clock = clock or SystemClock()
        self.org = self.settings.org
        self._run_worker = worker
        self._concurrency = concurrency
        self._lease_s = duration_seconds(lease)
        self._poll_s = duration_seconds(poll_interval)
        self._connectors: dict[str, ConnectorFactory] = {"FACIAL_SCAN": FacialScanConnector}
        self._connectors.update(connectors or {})
        self.on_settled = on_settled
        """Called with (run id, status) whenever this process's worker stops executing a run."""
        self._secret: bytes | None = None
        self._only_run = only_run
        self._store: Store | None = None
        self.worker: Worker | None = None
        self._settled: dict[str, asyncio.Event] = {}
        self._parent: App | None = None
        self._closers: list[Callable[[], Awaitable[None]]] = []

    # lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> App:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Open (and migrate) the database; start the worker unless ``worker=False``."""
        store = open_store(
            self.settings.database_url, for_worker=self._run_worker and bool(self.loops)
        )
        if sqlite_path(self.settings.database_url) is None:
            _ = self.secret  # a shared database needs PULSELOOP_SECRET_KEY: fail at start
        await store.open()
        self._store = store
        if self._run_worker and self.loops:
            self.worker = Worker(
                store, self.loops, org=self.org, clock=self.clock,
                concurrency=self._concurrency, lease_s=self._lease_s, poll_s=self._poll_s,
                connectors=self._connectors, connector_services=self, only_run=self._only_run,
                on_settled=self._on_settled,
            )  # fmt: skip
            await self.worker.start()

    def for_org(self, org: str) -> App:
        """A view of this open App acting as organization ``org``.

        The view shares this App's open store, loops, clock, connectors and link secret,
        and has no worker of its own: runs it triggers are executed by a worker serving
        ``org`` (a worker serves one organization). Closing the view closes nothing. The
        HTTP API uses one view per request, for the organization of the request's key.
        """
        view = App.__new__(App)
        view.__dict__.update(self.__dict__)
        view.settings = dataclasses.replace(self.settings, org=org)
        view.org = org
        view._run_worker = False
        view.worker = None
        view._settled = {}
        view.on_settled = None
        view._secret = self.secret
        view._parent = self
        return view

    def on_close(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Have ``fn`` awaited when the App closes, before its worker and store stop (a
        view hands it to the App that owns the store). Services that use the store in
        the background (the scan analysis runner) stop this way."""
        owner = self._parent or self
        owner._closers.append(fn)

    async def close(self) -> None:
        """Stop background services, the worker (handing back runs in flight), and close
        the database."""
        if self._parent is not None:  # a view: the parent owns the store
            return
        while self._closers:
            await self._closers.pop()()
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None
        if self._store is not None:
            await self._store.close()
            self._store = None

    @property
    def secret(self) -> bytes:
        """The key that signs scan links (see :mod:`pulseloop.connectors.tokens`)."""
        if self._secret is None:
            self._secret = load_secret(self.settings)
        return self._secret

    def notify_work(self) -> None:
        """Tell this process's worker that something may be runnable now."""
        if self._parent is not None:
            self._parent.notify_work()
        elif self.worker is not None:
            self.worker.kick()

    def notify_timers(self) -> None:
        """Tell this process's worker that the next timer or schedule tick may be sooner."""
        if self._parent is not None:
            self._parent.notify_timers()
        elif self.worker is not None:
            self.worker.timers_changed()

    @property
    def schedules(self) -> Schedules:
        """This organization's recurring triggers (see :class:`~pulseloop.schedules.Schedules`)."""
        return Schedules(self)

    @property
    def store(self) -> Store:
        """The open store (for connectors and tools built on the App)."""
        if self._parent is not None:
            return self._parent.store
        if self._store is None:
            raise PulseloopError("the App is not open; use `async with App(...) as app:`")
        return self._store

    # runs ------------------------------------------------------------------------------
    async def trigger(
        self,
        loop: str,
        body: Any = None,
        *,
        id: str | None = None,
        run_timeout: Duration | None = None,
    ) -> Run:
        """Start a run of ``loop`` with ``body``; an existing ``id`` returns that run.

        ``run_timeout`` (else the loop's ``run_timeout``): fail the run with ``RunTimeout``
        if it has not finished that long after now, even while it is parked."""
        if loop not in self.loops and (self.loops or self._run_worker):
            known = ", ".join(sorted(self.loops)) or "none"
            raise LoopNotFound(f"no loop named {loop!r} in this app; known loops: {known}")
        if id is not None:
            check_run_id(id)
        text = encode(body, "the event body")
        now = self.clock.now()
        timeout_s = run_timeout_s(self.loops.get(loop), run_timeout)
        deadline_at = None if timeout_s is None else now + timeout_s
        record, _ = await self.store.create_run(
            self.org, id or new_run_id(), loop, text, now, deadline_at
        )
        self.notify_work()
        if deadline_at is not None:
            self.notify_timers()
        return build_run(record)

    async def get_run(self, run_id: str) -> Run:
        """The run with its step timeline (RunNotFound if it is not in this org)."""
        detail = await self.store.get_run_detail(self.org, run_id)
        if detail is None:
            raise RunNotFound(f"no run {run_id!r} in this organization; check the id")
        return build_run(detail.run, detail.steps, detail.attempts, detail.waits)

    async def list_runs(
        self, *, loop: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[Run]:
        """Newest runs first (without their steps)."""
        records = await self.store.list_runs(self.org, loop=loop, status=status, limit=limit)
        return [build_run(r) for r in records]

    async def wait_for_run(self, run_id: str, timeout: Duration | None = None) -> Run:
        """Wait until the run is completed, failed or cancelled; return it.

        Raises TimeoutError if ``timeout`` (real time) passes first.
        """
        limit = None if timeout is None else duration_seconds(timeout)
        poll_s = _SETTLE_POLL_S
        try:
            async with asyncio.timeout(limit):
                while True:
                    event = self._settled.setdefault(run_id, asyncio.Event())
                    event.clear()
                    record = await self._record(run_id)  # the row only: polls are cheap
                    if record.status in TERMINAL_STATUSES:
                        return await self.get_run(run_id)
                    # this process's worker settles the event at once; polling (backing
                    # off) covers runs executed by a worker in another process
                    await wait_event(event, poll_s)
                    poll_s = min(poll_s * 2, _SETTLE_POLL_MAX_S)
        except TimeoutError:
            raise TimeoutError(
                f"run {run_id!r} did not finish within {timeout}; it keeps running, "
                "wait again or inspect it with get_run"
            ) from None

    async def send_event(self, run_id: str, type: str, payload: Any = None) -> None:
        """Deliver an event to ``step.wait_for_event(type=...)`` of the run (buffered)."""
        text = encode(payload, f"the payload of event {type!r}")
        if not await self.store.send_signal(
            self.org, run_id, f"event:{type}", text, self.clock.now()
        ):
            raise RunNotFound(f"no run {run_id!r} in this organization; check the id")
        self.notify_work()

    # operators -------------------------------------------------------------------------
    async def cancel(self, run_id: str) -> Run:
        """Cancel an unfinished run; a step in flight is abandoned, nothing more runs."""
        record = await self.store.cancel_run(self.org, run_id, self.clock.now())
        if self.worker is not None:
            self.worker.abort(record.key)
        return build_run(record)

    async def pause(self, run_id: str) -> Run:
        """Pause a run; a running one stops after its current step is recorded."""
        return build_run(await self.store.pause_run(self.org, run_id, self.clock.now()))

    async def resume(self, run_id: str) -> Run:
        """Resume a paused run."""
        record = await self.store.resume_run(self.org, run_id, self.clock.now(), time.time())
        self.notify_work()
        return build_run(record)

    async def retry(self, run_id: str) -> Run:
        """Re-run a failed run: finished steps replay, failed ones run again."""
        record = await self.store.retry_run(self.org, run_id, self.clock.now())
        self.notify_work()
        return build_run(record)

    async def restart(self, run_id: str, from_step: str) -> Run:
        """Forget ``from_step`` and everything after it, and run on from there."""
        record = await self.store.restart_run(self.org, run_id, from_step, self.clock.now())
        if self.worker is not None:
            self.worker.abort(record.key)
        self.notify_work()
        return build_run(record)

    async def deploys(self) -> list[Deploy]:
        """Every loop version a worker of this organization served, newest first."""
        return [build_deploy(d) for d in await self.store.list_deploys(self.org)]

    # internals -------------------------------------------------------------------------
    async def _record(self, run_id: str) -> RunRecord:
        record = await self.store.get_run(self.org, run_id)
        if record is None:
            raise RunNotFound(f"no run {run_id!r} in this organization; check the id")
        return record

    def _on_settled(self, run_id: str, status: str) -> None:
        event = self._settled.pop(run_id, None)
        if event is not None:
            event.set()
        if self.on_settled is not None:
            self.on_settled(run_id, status)


def new_run_id() -> str:
    """A fresh run id: 32 hex digits, the creation time in milliseconds then 80 random bits.

    Time first, so a new run's rows (its run row, its steps, signals and waits, all keyed
    by it) land beside the previous run's in every index instead of on a random page each:
    with random ids every step of a busy worker dirtied its own page of a large table, and
    commits grew with history.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def check_run_id(run_id: object) -> str:
    """``run_id`` if it may name a run: 1-200 characters of :data:`RUN_ID_CHARS`, not only
    dots (``.`` and ``..`` are path segments); :class:`InvalidRunId` otherwise."""
    if isinstance(run_id, str) and _RUN_ID.fullmatch(run_id) and run_id.strip("."):
        return run_id
    if not isinstance(run_id, str):
        shown = f"{run_id!r} (a {type(run_id).__name__}, not a string)"
    elif len(run_id) > MAX_RUN_ID_CHARS:
        shown = f"{run_id[:40]!r}... ({len(run_id)} characters)"
    else:
        shown = repr(run_id)
    raise InvalidRunId(
        f"run id {shown} is not allowed: use 1 to {MAX_RUN_ID_CHARS} characters from "
        f"{RUN_ID_CHARS} (letters and digits are ASCII only; no '/', spaces or other "
        "characters; not only dots)"
    )
