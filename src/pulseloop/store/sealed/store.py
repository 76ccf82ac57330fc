"""The Store that encrypts: every patient-bearing payload sealed on its way in, opened on
its way out, around either backend.

Design record. The cipher could have gone (a) into the engine's codec, (b) into each
backend's SQL modules, or (c) around the Store. (a) leaves every other reader (API,
dashboard, connectors) to decrypt on its own; (b) writes it twice and spreads it over
a dozen statements per backend. (c) is one implementation: backends store the opaque
text they are given, as before, and only the few statements the backends build payloads
from themselves had to change (a scan's signal now names the scan instead of copying its
data; this layer hands the wait the scan's record). Error columns hold dicts, so a
sealed error travels as ``{"sealed": "<ciphertext>"}``.

Rows written before encryption are plaintext (JSON never starts like a ciphertext): they
are read as they are and re-encrypted by :mod:`pulseloop.store.sealed.resealer`. A
ciphertext that does not open is an :class:`~pulseloop.errors.EncryptionKeyError`, never
garbage and never a plaintext fallback.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from pulseloop.errors import EncryptionKeyError
from pulseloop.store.audit import AuditStore
from pulseloop.store.base import (
    SCAN_SIGNAL_PAYLOAD,
    AnalysisJob,
    AttemptRecord,
    DeployRecord,
    Firing,
    History,
    KeyRecord,
    Lease,
    OrgRecord,
    RunDetail,
    RunRecord,
    ScanRecord,
    ScheduleRecord,
    SessionStore,
    Signal,
    StepRecord,
    Store,
    StoreStats,
    TimerOutcome,
    TriggerWindow,
    WaitRecord,
)
from pulseloop.store.sealed.children import SealedChildren
from pulseloop.store.sealed.codec import Codec, Unlearnt, is_sealed_error
from pulseloop.store.sealed.columns import RUN_ORG, SCAN_ORG
from pulseloop.store.sealed.flow import FlowKeys
from pulseloop.store.sealed.keyring import (
    DataKey,
    Keyring,
    PayloadSql,
    Recent,
    Statement,
    seal,
)
from pulseloop.store.sealed.master import MasterKey
from pulseloop.store.sealed.schedules import SealedSchedules
from pulseloop.store.sealed.webhooks import SealedWebhooks

_T = TypeVar("_T")


def _store_members() -> frozenset[str]:
    """The public names of every concern the Store protocol is made of."""
    return frozenset(
        name
        for proto in Store.__mro__
        if getattr(proto, "_is_protocol", False)
        for name in vars(proto)
        if not name.startswith("_")
    )


STORE_MEMBERS = _store_members()
"""Names the encrypting store must define itself (see ``EncryptedStore.__getattr__``)."""


class SealedBackend(Store, PayloadSql, Protocol):
    """A backend this layer wraps: a Store that also runs the layer's own SQL."""


class EncryptedStore(SealedSchedules, SealedChildren):
    """:class:`~pulseloop.store.base.Store` sealing payloads with per-organization keys."""

    inner: SealedBackend

    def __init__(self, inner: SealedBackend, master: MasterKey | Callable[[], MasterKey]) -> None:
        """``master``: the key, or how to load it when the store opens (so a missing key
        is reported after an unreachable database, not instead of it)."""
        self.inner = inner
        self._master = master
        self._keyring: Keyring | None = None
        self._flow: FlowKeys | None = None
        self._recent = Recent()
        self._codec = Codec(self._recent)

    @property
    def keyring(self) -> Keyring:
        """The data keys (once open)."""
        if self._keyring is None:
            raise EncryptionKeyError("the store is not open; open it before sealing payloads")
        return self._keyring

    def __getattr__(self, name: str) -> Any:
        # backend extras the worker probes for (commits, wake-up subscriptions, ...), never
        # a Store method: each of those is defined in this layer, sealing what it carries,
        # so one added to the protocol without a sealed counterpart fails loudly here
        # instead of quietly storing patient data in plaintext
        if name in STORE_MEMBERS:
            raise AttributeError(
                f"EncryptedStore has no {name!r}: a Store method must be defined in "
                "pulseloop.store.sealed (sealing its payloads, or passing it through when it "
                "carries none), not forwarded to the backend unsealed"
            )
        return getattr(self.inner, name)

    async def open(self) -> None:
        await self.inner.open()
        try:
            master = self._master if isinstance(self._master, MasterKey) else self._master()
            self._keyring = Keyring(master, self.inner)
            self._flow = FlowKeys(master)
            await self._keyring.load()  # a wrong master key fails here, not mid-run
            self._codec.use(self._keyring)
        except BaseException:
            await self.inner.close()
            raise

    async def close(self) -> None:
        await self.inner.close()

    async def payload_sql(self, statements: Sequence[Statement]) -> list[list[tuple[Any, ...]]]:
        return await self.inner.payload_sql(statements)

    @property
    def _flow_keys(self) -> FlowKeys:
        if self._flow is None:
            raise EncryptionKeyError("the store is not open; open it before triggering runs")
        return self._flow

    async def open_stored(self, stored: str | None, column: str, *row: str) -> str | None:
        """The plaintext of a payload read straight from the database, for tools that read
        rows with their own SQL: ``column`` as ``table.column``, ``row`` as in
        :mod:`pulseloop.store.sealed.columns` (e.g. ``"steps.output", run_key, step``)."""
        return await self._open(stored, column, *row)

    async def rotate_data_key(self, org: str) -> DataKey:
        """Make a new data key current for ``org`` (``pulseloop keys rotate-data-key``)."""
        await self.keyring.load()
        return await self.keyring.rotate(org)

    # sealing and opening -----------------------------------------------------------
    # The hot path (a step recorded, a run claimed or read) seals and opens synchronously
    # once its keys are in memory; only a key not seen yet costs an await and a read.
    async def _key(self, org: str, column: str) -> DataKey:
        if not org:
            raise EncryptionKeyError(f"cannot seal {column}: the write names no organization")
        keys = self.keyring
        return keys.cached(org) or await keys.current(org)

    async def _seal(self, org: str, text: str, column: str, *row: str) -> str:
        return self._codec.seal(await self._key(org, column), text, column, *row)

    async def _org_of(self, lease: Lease) -> str:
        """The lease's organization; looked up for a lease made without it (the engine
        always names it; this is for tools and tests that build leases by hand)."""
        if lease.org:
            return lease.org
        (rows,) = await self.inner.payload_sql([(RUN_ORG, (lease.run_id,))])
        return str(rows[0][0]) if rows else ""

    async def _seal_opt(self, org: str, text: str | None, column: str, *row: str) -> str | None:
        return None if text is None else await self._seal(org, text, column, *row)

    async def _seal_error(
        self, org: str, error: dict[str, Any] | None, column: str, *row: str
    ) -> dict[str, Any] | None:
        if error is None:
            return None
        return self._codec.seal_error(await self._key(org, column), error, column, *row)

    async def _opening(self, fn: Callable[[], _T]) -> _T:
        """``fn()`` (which opens records with :attr:`_codec`), fetching first any data key
        it names that this process has not seen (then opening again)."""
        while True:
            try:
                return fn()
            except Unlearnt as missing:
                await self.keyring.by_id(missing.key_id)  # EncryptionKeyError if absent

    async def _open(
        self, stored: str | None, column: str, *row: str, org: str | None = None
    ) -> str | None:
        codec = self._codec
        return await self._opening(lambda: codec.open(stored, column, row, org))

    async def _run(self, r: RunRecord) -> RunRecord:
        try:  # the usual case first, without another coroutine (polls read runs often)
            return self._codec.run(r)
        except Unlearnt:
            return await self._opening(functools.partial(self._codec.run, r))

    async def _runs(self, records: list[RunRecord]) -> list[RunRecord]:
        run = self._codec.run
        return await self._opening(lambda: [run(r) for r in records])

    async def _steps(self, steps: list[StepRecord], org: str | None = None) -> list[StepRecord]:
        step = self._codec.step
        return await self._opening(lambda: [step(s, org) for s in steps])

    async def _attempts(
        self, attempts: list[AttemptRecord], org: str | None = None
    ) -> list[AttemptRecord]:
        def opened(a: AttemptRecord) -> AttemptRecord:
            if not is_sealed_error(a.error):
                return a
            error = self._codec.open_error(a.error, "steps.error", (a.run_id, a.step), org)
            return dataclasses.replace(a, error=error)

        return await self._opening(lambda: [opened(a) for a in attempts])

    async def _scan(self, s: ScanRecord | None) -> ScanRecord | None:
        if s is None:
            return None
        metadata = await self._open(s.metadata, "scans.metadata", s.id, org=s.org)
        result = await self._open(s.result, "scans.result", s.id, org=s.org)
        return dataclasses.replace(s, metadata=metadata or "", result=result)

    async def _signal(self, org: str, sig: Signal) -> Signal:
        if sig.payload == SCAN_SIGNAL_PAYLOAD and sig.key.startswith("scan:"):
            scan = await self.get_scan(org, sig.key.removeprefix("scan:"))
            payload = json.dumps(scan.payload()) if scan is not None else "null"
        else:
            opened = await self._open(
                sig.payload, "signals.payload", sig.key, repr(sig.created_at), org=org
            )
            payload = opened or ""
        return dataclasses.replace(sig, payload=payload)

    # runs -------------------------------------------------------------------------
    async def create_run(
        self,
        org: str,
        run_id: str,
        loop: str,
        input_json: str,
        now: float,
        deadline_at: float | None = None,
        trace_parent: str | None = None,
        *,
        priority: int = 0,
        flow_key: str | None = None,
        flow_limit: int = 0,
    ) -> tuple[RunRecord, bool]:
        sealed = await self._seal(org, input_json, "runs.input", run_id)
        if flow_key is not None:  # a keyed hash, never the (patient) key: sealed/flow.py
            flow_key = self._flow_keys.hide(org, flow_key)
        record, created = await self.inner.create_run(
            org, run_id, loop, sealed, now, deadline_at, trace_parent,
            priority=priority, flow_key=flow_key, flow_limit=flow_limit,
        )  # fmt: skip
        return await self._run(record), created

    async def get_run(self, org: str, run_id: str) -> RunRecord | None:
        record = await self.inner.get_run(org, run_id)
        return None if record is None else await self._run(record)

    async def run_status(self, org: str, run_id: str) -> str | None:
        return await self.inner.run_status(org, run_id)  # plaintext: nothing to open

    async def list_runs(
        self,
        org: str,
        *,
        loop: str | None = None,
        status: str | None = None,
        limit: int = 50,
        before: float | None = None,
        before_id: str | None = None,
        since: float | None = None,
    ) -> list[RunRecord]:
        records = await self.inner.list_runs(
            org, loop=loop, status=status, limit=limit, before=before, before_id=before_id,
            since=since,
        )  # fmt: skip
        return await self._runs(records)

    async def get_run_detail(self, org: str, run_id: str) -> RunDetail | None:
        detail = await self.inner.get_run_detail(org, run_id)
        if detail is None:
            return None
        return RunDetail(
            await self._run(detail.run),
            await self._steps(detail.steps, org),
            await self._attempts(detail.attempts, org),
            detail.waits,
        )

    # the worker's side --------------------------------------------------------------
    async def claim_runs(
        self,
        org: str,
        worker: str,
        loops: list[str],
        limit: int,
        lease_now: float,
        lease_s: float,
        now: float,
        run_id: str | None = None,
    ) -> list[RunRecord]:
        records = await self.inner.claim_runs(
            org, worker, loops, limit, lease_now, lease_s, now, run_id
        )
        return await self._runs(records)

    async def renew_leases(
        self, worker: str, run_ids: list[str], lease_now: float, lease_s: float
    ) -> set[str]:
        return await self.inner.renew_leases(worker, run_ids, lease_now, lease_s)

    async def load_history(self, run_id: str, generation: int) -> History:
        history = await self.inner.load_history(run_id, generation)
        steps = history.steps
        for opened in await self._steps(list(steps.values())):
            steps[opened.name] = opened
        return history

    async def record_step(
        self, lease: Lease, step: StepRecord, consume_signal: int | None = None
    ) -> str:
        # the engine's leases name their organization, and its key is cached: no await
        # before the backend's
        keys = self._keyring
        key = keys.cached(lease.org) if keys is not None and lease.org else None
        if key is None:
            key = await self._key(await self._org_of(lease), "steps.output")
        sealed = self._codec.seal_step(key, step)
        return await self.inner.record_step(lease, sealed, consume_signal)

    async def record_failed_attempt(self, lease: Lease, attempt: AttemptRecord) -> str:
        org = await self._org_of(lease)
        error = await self._seal_error(
            org, attempt.error, "steps.error", attempt.run_id, attempt.step
        )
        return await self.inner.record_failed_attempt(
            lease, dataclasses.replace(attempt, error=error)
        )

    async def open_wait(self, lease: Lease, wait: WaitRecord) -> tuple[WaitRecord, Signal | None]:
        stored, signal = await self.inner.open_wait(lease, wait)
        if signal is None:
            return stored, None
        return stored, await self._signal(await self._org_of(lease), signal)

    async def park_run(
        self, lease: Lease, wake_at: float | None, keys: list[str], now: float
    ) -> str:
        return await self.inner.park_run(lease, wake_at, keys, now)

    async def finish_run(
        self,
        lease: Lease,
        status: str,
        output: str | None,
        error: dict[str, Any] | None,
        now: float,
    ) -> None:
        org = await self._org_of(lease)
        sealed = await self._seal_opt(org, output, "runs.output", lease.run_id)
        sealed_error = await self._seal_error(org, error, "runs.error", lease.run_id)
        await self.inner.finish_run(lease, status, sealed, sealed_error, now)

    async def record_summary(self, lease: Lease, summary: str | None, now: float) -> None:
        org = await self._org_of(lease)
        sealed = await self._seal_opt(org, summary, "runs.summary", lease.run_id)
        await self.inner.record_summary(lease, sealed, now)

    async def release_run(self, lease: Lease, now: float) -> None:
        await self.inner.release_run(lease, now)

    async def fire_timers(self, org: str, now: float) -> tuple[int, float | None]:
        return await self.inner.fire_timers(org, now)

    async def send_signal(
        self, org: str, run_id: str, key: str, payload_json: str, now: float
    ) -> bool:
        sealed = await self._seal(org, payload_json, "signals.payload", key, repr(now))
        return await self.inner.send_signal(org, run_id, key, sealed, now)

    async def expire_deadlines(
        self, org: str, now: float, error: dict[str, Any]
    ) -> tuple[list[str], float | None]:
        # ``error`` is the engine's fixed RunTimeout text, the same for every run failed,
        # nothing of a patient's; it cannot be sealed once for many rows (each run's error
        # is bound to its run key), so it is stored as given and sealed right after
        expired = await self.inner.expire_deadlines(org, now, error)
        from pulseloop.store.sealed.resealer import seal_expired  # it imports this module

        await seal_expired(self, expired[0])
        return expired

    async def timer_pass(
        self,
        org: str,
        now: float,
        plan: Callable[[ScheduleRecord], Firing],
        limit: int,
        deadline_error: dict[str, Any],
    ) -> TimerOutcome:
        """The backend's one-transaction timer pass: tick inputs resealed as in
        ``fire_schedules``, timed-out runs' errors sealed right after, as in
        :meth:`expire_deadlines`."""
        outcome = await self._firing(
            org,
            plan,
            lambda resealing: self.inner.timer_pass(org, now, resealing, limit, deadline_error),
        )
        from pulseloop.store.sealed.resealer import seal_expired  # it imports this module

        await seal_expired(self, list(outcome.timed_out))
        return outcome

    async def register_worker(self, worker: str) -> None:
        await self.inner.register_worker(worker)

    async def unregister_worker(self, worker: str) -> None:
        await self.inner.unregister_worker(worker)

    async def reclaim_dead_workers(self, now: float) -> int:
        return await self.inner.reclaim_dead_workers(now)

    # operators ----------------------------------------------------------------------
    async def cancel_run(self, org: str, run_id: str, now: float) -> RunRecord:
        return await self._run(await self.inner.cancel_run(org, run_id, now))

    async def pause_run(self, org: str, run_id: str, now: float) -> RunRecord:
        return await self._run(await self.inner.pause_run(org, run_id, now))

    async def resume_run(self, org: str, run_id: str, now: float, lease_now: float) -> RunRecord:
        return await self._run(await self.inner.resume_run(org, run_id, now, lease_now))

    async def retry_run(self, org: str, run_id: str, now: float) -> RunRecord:
        return await self._run(await self.inner.retry_run(org, run_id, now))

    async def restart_run(self, org: str, run_id: str, from_step: str, now: float) -> RunRecord:
        return await self._run(await self.inner.restart_run(org, run_id, from_step, now))

    # scans ----------------------------------------------------------------------------
    async def create_scan(
        self,
        org: str,
        run_id: str,
        step: str,
        scan_id: str,
        token_hash: str,
        metadata_json: str,
        now: float,
        expires_at: float,
    ) -> ScanRecord:
        sealed = await self._seal(org, metadata_json, "scans.metadata", scan_id)
        record = await self.inner.create_scan(
            org, run_id, step, scan_id, token_hash, sealed, now, expires_at
        )
        opened = await self._scan(record)
        assert opened is not None
        return opened

    async def latest_scan(self, org: str, run_id: str) -> ScanRecord | None:
        return await self._scan(await self.inner.latest_scan(org, run_id))

    async def get_scan(self, org: str, scan_id: str) -> ScanRecord | None:
        return await self._scan(await self.inner.get_scan(org, scan_id))

    async def scan_by_token(self, token_hash: str) -> ScanRecord | None:
        return await self._scan(await self.inner.scan_by_token(token_hash))

    async def move_scan(
        self, token_hash: str, from_statuses: tuple[str, ...], to_status: str, now: float
    ) -> ScanRecord | None:
        return await self._scan(
            await self.inner.move_scan(token_hash, from_statuses, to_status, now)
        )

    async def finish_scan(
        self,
        scan_id: str,
        status: str,
        result_json: str | None,
        failure_reason: str | None,
        now: float,
    ) -> ScanRecord:
        (rows,) = await self.inner.payload_sql([(SCAN_ORG, (scan_id,))])
        sealed = None  # no such scan: the backend refuses it, and nothing is stored
        if rows:
            sealed = await self._seal_opt(str(rows[0][0]), result_json, "scans.result", scan_id)
        record = await self.inner.finish_scan(scan_id, status, sealed, failure_reason, now)
        opened = await self._scan(record)
        assert opened is not None
        return opened

    async def finish_open_scan(
        self,
        token_hash: str,
        from_statuses: tuple[str, ...],
        status: str,
        result_json: str | None,
        failure_reason: str | None,
        now: float,
    ) -> ScanRecord | None:
        scan = await self.inner.scan_by_token(token_hash)
        if scan is None:
            return None
        sealed = await self._seal_opt(scan.org, result_json, "scans.result", scan.id)
        return await self._scan(
            await self.inner.finish_open_scan(
                token_hash, from_statuses, status, sealed, failure_reason, now
            )
        )

    async def accept_upload(
        self,
        token_hash: str,
        from_statuses: tuple[str, ...],
        kind: str,
        payload: str,
        now: float,
    ) -> ScanRecord | None:
        scan = await self.inner.scan_by_token(token_hash)
        if scan is None:
            return None
        sealed = await self._seal(scan.org, payload, "analysis_jobs.payload", scan.id)
        return await self._scan(
            await self.inner.accept_upload(token_hash, from_statuses, kind, sealed, now)
        )

    async def claim_analyses(
        self, worker: str, limit: int, lease_now: float, lease_s: float
    ) -> list[AnalysisJob]:
        jobs = await self.inner.claim_analyses(worker, limit, lease_now, lease_s)
        return [
            dataclasses.replace(
                j,
                payload=await self._open(j.payload, "analysis_jobs.payload", j.scan_id, org=j.org)
                or "",
            )
            for j in jobs
        ]

    # deploys, organizations, keys, stats: nothing of patients' -----------------------
    async def record_deploy(self, org: str, loop: str, version: str, now: float) -> None:
        await self.inner.record_deploy(org, loop, version, now)

    async def list_deploys(self, org: str) -> list[DeployRecord]:
        return await self.inner.list_deploys(org)

    async def create_org(self, name: str, now: float) -> OrgRecord:
        return await self.inner.create_org(name, now)

    async def ensure_org(self, name: str, now: float) -> OrgRecord:
        return await self.inner.ensure_org(name, now)

    async def get_org(self, name: str) -> OrgRecord | None:
        return await self.inner.get_org(name)

    async def list_orgs(self) -> list[OrgRecord]:
        return await self.inner.list_orgs()

    async def create_key(self, org: str, key_id: str, key_hash: str, now: float) -> KeyRecord:
        return await self.inner.create_key(org, key_id, key_hash, now)

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        return await self.inner.key_by_hash(key_hash)

    async def list_keys(self, org: str) -> list[KeyRecord]:
        return await self.inner.list_keys(org)

    async def revoke_key(self, key_id: str, now: float) -> KeyRecord:
        return await self.inner.revoke_key(key_id, now)

    async def stats(self, steps_since: float) -> StoreStats:
        return await self.inner.stats(steps_since)

    # concerns that carry no patient payload: passed through as they are ---------------
    @property
    def sessions(self) -> SessionStore:
        """Dashboard sessions: token hashes, key ids and times, nothing to seal."""
        return self.inner.sessions

    @property
    def audit(self) -> AuditStore:
        """The audit trail: who, what action, which object id, when; no payloads."""
        return self.inner.audit

    # webhook endpoints (their secrets sealed; see store/sealed/webhooks.py) ------------
    @property
    def webhooks(self) -> SealedWebhooks:
        """Webhook endpoints and deliveries, each endpoint's secret sealed at rest."""

        async def open_(org: str, stored: str, column: str, endpoint_id: str) -> str:
            return await self._open(stored, column, endpoint_id, org=org) or ""

        return SealedWebhooks(self.inner.webhooks, self._seal, open_)

    # flow control -------------------------------------------------------------------
    async def take_permit(
        self, org: str, key: str, limit: int, period_s: float, now: float
    ) -> float | None:
        return await self.inner.take_permit(org, key, limit, period_s, now)

    async def create_run_windowed(
        self,
        org: str,
        run_id: str,
        loop: str,
        input_for: Callable[[str], str],
        now: float,
        window: TriggerWindow,
        deadline_at: float | None = None,
        trace_parent: str | None = None,
        *,
        priority: int = 0,
        flow_key: str | None = None,
        flow_limit: int = 0,
    ) -> tuple[RunRecord, bool]:
        data_key = await self._key(org, "runs.input")

        def sealed_for(rid: str) -> str:  # inside the transaction: the run id is known there
            # seal() itself, not the codec's caching path: this may run on the SQLite writer
            # thread, and the recent-plaintext cache belongs to the event loop's thread
            return seal(data_key, input_for(rid), "runs.input", rid)

        hide = self._flow_keys.hide
        record, created = await self.inner.create_run_windowed(
            org, run_id, loop, sealed_for, now,
            dataclasses.replace(window, key=hide(org, window.key)), deadline_at, trace_parent,
            priority=priority, flow_key=None if flow_key is None else hide(org, flow_key),
            flow_limit=flow_limit,
        )  # fmt: skip
        return await self._run(record), created
