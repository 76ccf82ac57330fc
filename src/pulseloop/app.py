"""The embedding API: what tests, the CLI, the server and users' own services call.

app = App(loops=[HealthCheck], database_url="sqlite:///runs.db")
async with app:                 # opens the store, runs an in-process worker
    run = await app.trigger("health-check", {"patientId": "p1"})
    run = await app.wait_for_run(run.id, timeout="1 minute")
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType

from pulseloop.client import (
    MAX_RUN_ID_CHARS,
    RUN_ID_CHARS,
    OrgClient,
    check_run_id,
    new_run_id,
)
from pulseloop.config import Settings
from pulseloop.connectors.facial_scan import FacialScanConnector
from pulseloop.durations import Duration, duration_seconds
from pulseloop.engine.clock import Clock, SystemClock
from pulseloop.engine.context import ConnectorFactory
from pulseloop.engine.loop import Loop, loop_name
from pulseloop.engine.worker import Worker
from pulseloop.errors import PulseloopError
from pulseloop.runtime import Runtime
from pulseloop.store.base import Store

__all__ = ["MAX_RUN_ID_CHARS", "RUN_ID_CHARS", "App", "check_run_id", "new_run_id"]


class App(OrgClient):
    """A set of loops bound to a database and an organization, with an optional worker.

    The App owns a :class:`~pulseloop.runtime.Runtime` (store, worker, clock, connectors,
    link secret) and is itself the :class:`~pulseloop.client.OrgClient` of its own
    organization; :meth:`client` acts for another one through the same runtime.
    """

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
        settings = Settings.load(database_url=database_url, public_url=public_url, org=org)
        by_name: dict[str, type[Loop]] = {}
        for cls in loops:
            if not (isinstance(cls, type) and issubclass(cls, Loop)):
                raise PulseloopError(f"{cls!r} is not a Loop subclass; pass loop classes")
            name = loop_name(cls)
            if name in by_name and by_name[name] is not cls:
                raise PulseloopError(f"two loops are named {name!r}; set `name = ...` on one")
            by_name[name] = cls
        factories: dict[str, ConnectorFactory] = {"FACIAL_SCAN": FacialScanConnector}
        factories.update(connectors or {})
        runtime = Runtime(settings, by_name, clock or SystemClock(), factories, runs_worker=worker)
        super().__init__(runtime, settings.org)
        runtime.on_settled = on_settled
        self._concurrency = concurrency
        self._lease_s = duration_seconds(lease)
        self._poll_s = duration_seconds(poll_interval)
        self._only_run = only_run

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
        await self.runtime.open(
            self.org, concurrency=self._concurrency, lease_s=self._lease_s,
            poll_s=self._poll_s, only_run=self._only_run,
        )  # fmt: skip

    async def close(self) -> None:
        """Stop background services, the worker (handing back runs in flight), and close
        the database."""
        await self.runtime.close()

    def client(self, org: str) -> OrgClient:
        """Act for organization ``org`` through this App's open store (this App itself for
        its own organization). The client has no worker: runs it triggers are executed
        by a worker serving ``org``. The HTTP API takes one per request."""
        return self if org == self.org else self.runtime.client(org)

    def for_org(self, org: str) -> OrgClient:
        """Deprecated: use :meth:`client`."""
        warnings.warn(
            "App.for_org is deprecated; use App.client(org)", DeprecationWarning, stacklevel=2
        )
        return self.client(org)

    def on_close(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Have ``fn`` awaited when the App closes, before its worker and store stop.
        Services that use the store in the background (the scan analysis runner) stop
        this way."""
        self.runtime.on_close(fn)

    # what the runtime owns, for connectors and tools built on the App ------------------
    @property
    def settings(self) -> Settings:
        """Where the data lives, how links are addressed, this App's organization."""
        return self.runtime.settings

    @property
    def store(self) -> Store:
        """The open store (for connectors and tools built on the App)."""
        return self.runtime.store

    @property
    def worker(self) -> Worker | None:
        """This process's worker, while open (None with ``worker=False``)."""
        return self.runtime.worker

    @property
    def secret(self) -> bytes:
        """The key that signs scan links (see :mod:`pulseloop.connectors.tokens`)."""
        return self.runtime.secret

    @property
    def on_settled(self) -> Callable[[str, str], None] | None:
        """Called with (run id, status) whenever this process's worker stops executing a
        run."""
        return self.runtime.on_settled

    @on_settled.setter
    def on_settled(self, fn: Callable[[str, str], None] | None) -> None:
        self.runtime.on_settled = fn

    def notify_work(self) -> None:
        """Tell this process's worker that something may be runnable now."""
        self.runtime.notify_work()

    def timers_changed(self) -> None:
        """Tell this process's worker a timer may now be due sooner."""
        self.runtime.timers_changed()
