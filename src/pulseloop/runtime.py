"""What one process shares between the organizations it serves.

A :class:`Runtime` owns the open store, the in-process worker, the clock, the loops and
connectors, and the scan-link secret. Organizations never own any of it: each is acted
for through an :class:`~pulseloop.client.OrgClient` the runtime hands out
(:meth:`Runtime.client`), which the HTTP layer takes per request from the caller's key.

Design record. ``App.for_org`` used to copy the App's ``__dict__`` into a "view" and blank
the fields a view must not own (worker, settle events, close hooks). Every field added to
``App`` later had to be remembered there, and a view could still reach state it did not
own. Splitting what is shared (this runtime) from what is per organization (the client)
makes the ownership a type: a client has no ``close``, no worker, no store of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, cast

from pulseloop.config import Settings
from pulseloop.connectors.tokens import load_secret
from pulseloop.engine.clock import Clock
from pulseloop.engine.context import ConnectorFactory
from pulseloop.engine.loop import Loop
from pulseloop.engine.tracing import enable_tracing
from pulseloop.engine.worker import Worker
from pulseloop.errors import PulseloopError
from pulseloop.store import open_store, sqlite_path
from pulseloop.store.base import Store
from pulseloop.store.purger import Purger
from pulseloop.store.sealed import EncryptedStore, Resealer
from pulseloop.store.sealed.keyring import PayloadSql

if TYPE_CHECKING:
    from pulseloop.client import OrgClient
    from pulseloop.webhooks.deliverer import Deliverer


class Runtime:
    """The store, worker, clock, loops, connectors and link secret of one process."""

    def __init__(
        self,
        settings: Settings,
        loops: Mapping[str, type[Loop]],
        clock: Clock,
        connectors: Mapping[str, ConnectorFactory],
        *,
        runs_worker: bool,
    ) -> None:
        self.settings = settings
        self.loops = dict(loops)
        self.clock = clock
        self.connectors = dict(connectors)
        self.runs_worker = runs_worker
        """Whether :meth:`open` starts a worker (when there are loops to serve)."""
        self.worker: Worker | None = None
        self.on_settled: Callable[[str, str], None] | None = None
        """Called with (run id, status) whenever this process's worker stops executing a run."""
        self._secret: bytes | None = None
        self._store: Store | None = None
        self._settled: dict[str, asyncio.Event] = {}
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.purger: Purger | None = None
        """The background retention purge (with the worker)."""
        self.resealer: Resealer | None = None
        """The background re-encryption pass (with the worker, when encrypting)."""
        self.deliverer: Deliverer | None = None
        """The background webhook deliverer (with a long-lived worker)."""

    async def open(
        self,
        worker_org: str,
        *,
        concurrency: int,
        lease_s: float,
        poll_s: float,
        only_run: str | None,
    ) -> None:
        """Open (and migrate) the database; start a worker for ``worker_org`` if this
        runtime runs one and has loops (a worker serves one organization)."""
        with_worker = self.runs_worker and bool(self.loops)
        if self.settings.tracing:  # before anything runs: a missing extra fails here
            enable_tracing()
        store = open_store(self.settings.database_url, for_worker=with_worker)
        if sqlite_path(self.settings.database_url) is None:
            _ = self.secret  # a shared database needs PULSELOOP_SECRET_KEY: fail at start
        await store.open()
        self._store = store
        if with_worker:
            self.worker = Worker(
                store, self.loops, org=worker_org, clock=self.clock,
                concurrency=concurrency, lease_s=lease_s, poll_s=poll_s,
                connectors=self.connectors, connector_services=self, only_run=only_run,
                on_settled=self._on_settled,
            )  # fmt: skip
            await self.worker.start()
            if isinstance(store, EncryptedStore):  # re-encrypt older rows in the background
                self.resealer = Resealer(store)
                self.resealer.start()
                self._closers.append(self.resealer.stop)
            if only_run is None:  # a long-lived worker, not `trigger --wait`'s
                # retention: payloads past each organization's policy, every organization
                self.purger = Purger(cast(PayloadSql, store), worker_org, self.clock)
                self.purger.start()
                self._closers.append(self.purger.stop)
                self._start_deliverer(store)

    async def close(self) -> None:
        """Stop background services, the worker (handing back runs in flight), and close
        the database."""
        while self._closers:
            await self._closers.pop()()
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None
        if self._store is not None:
            await self._store.close()
            self._store = None

    def on_close(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Have ``fn`` awaited on close, before the worker and store stop (services that
        use the store in the background, like the scan analysis runner)."""
        self._closers.append(fn)

    @property
    def store(self) -> Store:
        """The open store."""
        if self._store is None:
            raise PulseloopError("the App is not open; use `async with App(...) as app:`")
        return self._store

    @property
    def secret(self) -> bytes:
        """The key that signs scan links (see :mod:`pulseloop.connectors.tokens`)."""
        if self._secret is None:
            self._secret = load_secret(self.settings)
        return self._secret

    def client(self, org: str) -> OrgClient:
        """Operator access to organization ``org`` through this runtime."""
        from pulseloop.client import OrgClient

        return OrgClient(self, org)

    # signals to this process's worker ---------------------------------------------------
    def notify_work(self) -> None:
        """Tell this process's worker that something may be runnable now."""
        if self.worker is not None:
            self.worker.kick()

    def abort(self, run_key: str) -> None:
        """Stop executing the run with this key here at once (cancelled or restarted)."""
        if self.worker is not None:
            self.worker.abort(run_key)

    def timers_changed(self) -> None:
        """A new timer (e.g. a scan's expiry) may be due before the worker's next pass."""
        if self.worker is not None:
            self.worker.timers_changed()

    def settled_event(self, run_id: str) -> asyncio.Event:
        """An event set when this process's worker next stops executing ``run_id`` (a
        hint: waiters re-read the run, since run ids are unique per organization only)."""
        return self._settled.setdefault(run_id, asyncio.Event())

    def _on_settled(self, run_id: str, status: str) -> None:
        if self.deliverer is not None:  # a finished run may have queued notifications
            self.deliverer.kick()
        event = self._settled.pop(run_id, None)
        if event is not None:
            event.set()
        if self.on_settled is not None:
            self.on_settled(run_id, status)

    # webhooks ------------------------------------------------------------------------------
    def _start_deliverer(self, store: Store) -> None:
        """POST queued webhook notifications in the background (any worker process
        delivers every organization's; see ``webhooks/deliverer.py``)."""
        from pulseloop.store.webhooks import DELIVERIES_HINT
        from pulseloop.webhooks.deliverer import Deliverer

        assert self.worker is not None
        self.deliverer = Deliverer(store.webhooks, self.clock, self.worker.id)
        self.deliverer.start()
        subscribe = getattr(store, "subscribe_wakeups", None)
        if subscribe is not None:  # PostgreSQL: another process queued deliveries
            subscribe(DELIVERIES_HINT, self.deliverer.kick)
        self._closers.append(self.deliverer.stop)
