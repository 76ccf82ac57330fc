"""The PostgreSQL backend: many workers on many machines share one database.

Where each call goes:

* a worker's fenced writes (steps, attempts, waits, park, finish, release) and lease
  renewals: the group-commit :class:`~pulseloop.store.postgres.writer.Writer`, one
  connection, one transaction per batch (renewals share it so they never deadlock with
  the same worker's step records, which lock the same rows in another order);
* everything else: a pooled connection for one transaction, returned at once.

Pooled transactions that fail because the connection dropped are rerun when that is
safe: reads, idempotent writes, or any transaction that had not reached its COMMIT.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg_pool import PoolTimeout

from pulseloop.errors import PulseloopError
from pulseloop.store.base import (
    AnalysisJob,
    AttemptRecord,
    DeployRecord,
    History,
    KeyRecord,
    Lease,
    OrgRecord,
    RunDetail,
    RunRecord,
    ScanRecord,
    Signal,
    StepRecord,
    StoreStats,
    WaitRecord,
    fallback_run_key,
)
from pulseloop.store.postgres import (
    analysis,
    counts,
    errors,
    flow,
    operators,
    orgs,
    runs,
    scans,
    wakeups,
)
from pulseloop.store.postgres.audit import PostgresAudit
from pulseloop.store.postgres.children import PostgresChildren
from pulseloop.store.postgres.connection import connect, make_pool, parse_url
from pulseloop.store.postgres.deadlines import PostgresDeadlines
from pulseloop.store.postgres.flow import PostgresFlow
from pulseloop.store.postgres.liveness import AdvisoryLocks
from pulseloop.store.postgres.schedules import PostgresSchedules
from pulseloop.store.postgres.schema import migrate
from pulseloop.store.postgres.sessions import PostgresSessions
from pulseloop.store.postgres.timers import PostgresTimerPass, fire_timers_in
from pulseloop.store.postgres.writer import OUTAGE_S, Writer
from pulseloop.store.sql import LIST_DEPLOYS
from pulseloop.store.sqlite.rows import (
    RUN_COLUMNS,
    attempt_from_row,
    run_from_row,
    step_from_row,
    wait_from_row,
)
from pulseloop.store.webhooks import DELIVERY_LEASE_OWNERS, RELEASE_DEAD_DELIVERIES, SqlWebhooks

T = TypeVar("T")
Conn = psycopg.AsyncConnection[Any]
log = logging.getLogger(__name__)

_BACKOFF_S = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def _reraise_swallowed_cancel() -> None:
    """Raise CancelledError if this task was cancelled while it waited for a pooled
    connection and the cancellation was lost.

    psycopg_pool waits with ``asyncio.wait_for``, which on Python 3.11 can swallow a
    cancellation that arrives as the wait completes; the task then runs on with a
    pending cancel request, and a worker being stopped never stops.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


class PostgresStore(
    PostgresSchedules, PostgresDeadlines, PostgresChildren, PostgresTimerPass, PostgresFlow
):
    """:class:`~pulseloop.store.base.Store` on a PostgreSQL database."""

    def __init__(self, url: str) -> None:
        self.settings = parse_url(url)
        self._pool = make_pool(self.settings)
        self._writer = Writer(lambda: connect(self.settings), self.settings.display, self._hint_all)
        self._notifier = wakeups.Notifier(self._borrow)
        self._listener = wakeups.Listener(lambda: connect(self.settings))
        self._liveness = AdvisoryLocks(lambda: connect(self.settings))
        self.sessions = PostgresSessions(self._tx)
        self.audit = PostgresAudit(self._tx)
        self._folder = counts.Folder(self._tx)  # /metrics counters (counts.py)
        self.webhooks = SqlWebhooks(self.payload_sql, lock="FOR UPDATE SKIP LOCKED")
        self._open = False

    @property
    def commits(self) -> int:
        """Group-commit transactions so far (for benchmarks: steps per commit)."""
        return self._writer.commits

    @property
    def hints_healthy(self) -> bool:
        """True while LISTEN delivers wake-up hints (the poll may then slow down)."""
        return self.settings.listen and self._listener.healthy

    async def open(self) -> None:
        try:
            conn = await connect(self.settings)
        except psycopg.Error as exc:
            raise errors.unreachable(self.settings.display, exc) from exc
        try:
            await migrate(conn, self.settings.display)
        except psycopg.Error as exc:
            raise errors.translate(exc, self.settings.display) from exc
        finally:
            await conn.close()
        try:
            await self._pool.open(wait=True, timeout=30.0)
            await self._writer.start()
        except (psycopg.Error, PoolTimeout) as exc:
            await self._pool.close()
            raise errors.unreachable(self.settings.display, exc) from exc
        if self.settings.listen:
            await self._listener.start()
        self._folder.start()
        self._open = True

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        await self._folder.stop()
        await self._listener.stop()
        await self._writer.stop()
        await self._notifier.close()
        await self._liveness.close()
        await self._pool.close()

    def subscribe_wakeups(self, org: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` when another process may have made work ready for ``org``."""
        self._listener.subscribe(org, callback)

    # plumbing ------------------------------------------------------------------------
    def _hint_all(self) -> None:
        self._notifier.hint(wakeups.ALL_ORGS)

    async def _borrow(self, fn: Callable[[Conn], Awaitable[None]]) -> None:
        async with self._pool.connection() as conn:
            await fn(conn)

    async def _tx(
        self,
        fn: Callable[[Conn], Awaitable[T]],
        *,
        idempotent: bool = True,
        notify: str | None = None,
        read_only: bool = False,
    ) -> T:
        """Run ``fn`` in one pooled transaction; rerun it after a lost connection when
        that is safe (``idempotent``, or COMMIT was never sent)."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + OUTAGE_S
        attempt = 0
        while True:
            committing = False
            try:
                async with self._pool.connection() as conn, conn.transaction():
                    if read_only:
                        await conn.execute(
                            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                        )
                    result = await fn(conn)
                    committing = True
            except PulseloopError:
                raise
            except PoolTimeout as exc:
                raise errors.unreachable(self.settings.display, exc) from exc
            except (psycopg.Error, OSError) as exc:
                retry = errors.is_transient(exc) or (
                    errors.is_disconnect(exc, None) and (idempotent or not committing)
                )
                if not retry or loop.time() >= give_up_at:
                    raise errors.translate(exc, self.settings.display) from exc
                await asyncio.sleep(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])
                attempt += 1
                continue
            _reraise_swallowed_cancel()
            if notify is not None:
                self._notifier.hint(notify)
            return result

    async def _fetchall(self, sql: str, params: Any) -> list[tuple[Any, ...]]:
        async def op(conn: Conn) -> list[tuple[Any, ...]]:
            cur = await conn.execute(sql, params)
            return list(await cur.fetchall())

        return await self._tx(op)

    # runs -----------------------------------------------------------------------------
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
        async def op(conn: Conn) -> tuple[RunRecord, bool]:
            insert = (
                "INSERT INTO runs (org, id, loop, status, input, created_at, updated_at, "
                "deadline_at, trace_parent, priority, flow_key, run_key) "
                "VALUES (%s, %s, %s, 'queued', %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING"
            )
            if flow_key is not None:
                await conn.execute(flow.ENSURE_SLOT, (org, flow_key, loop, flow_limit))
            values = (
                org, run_id, loop, input_json, now, now, deadline_at, trace_parent, priority,
                flow_key,
            )  # fmt: skip
            select = f"SELECT {RUN_COLUMNS} FROM runs WHERE org = %s AND id = %s"
            inserted = (await conn.execute(insert, (*values, run_id))).rowcount > 0
            if not inserted:
                row = await (await conn.execute(select, (org, run_id))).fetchone()
                if row is not None:  # an idempotent trigger: the run this id already names
                    return run_from_row(row), False
                # another organization's run has this id as its key: ours gets another
                key = fallback_run_key(org, run_id)
                inserted = (await conn.execute(insert, (*values, key))).rowcount > 0
            row = await (await conn.execute(select, (org, run_id))).fetchone()
            assert row is not None
            return run_from_row(row), inserted

        return await self._tx(op, notify=org)

    async def get_run(self, org: str, run_id: str) -> RunRecord | None:
        rows = await self._fetchall(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE org = %s AND id = %s", (org, run_id)
        )
        return run_from_row(rows[0]) if rows else None

    async def run_status(self, org: str, run_id: str) -> str | None:
        rows = await self._fetchall(
            "SELECT status FROM runs WHERE org = %s AND id = %s", (org, run_id)
        )
        return str(rows[0][0]) if rows else None

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
        where, params = ["org = %s"], [org]
        for column, value in (("loop", loop), ("status", status)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        extra: list[Any] = []
        if before is not None and before_id is not None:
            where.append("(created_at, id) < (%s, %s)")
            extra += [before, before_id]
        elif before is not None:
            where.append("created_at < %s")
            extra.append(before)
        if since is not None:
            where.append("created_at >= %s")
            extra.append(since)
        sql = (
            f"SELECT {RUN_COLUMNS} FROM runs WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT %s"
        )
        return [run_from_row(r) for r in await self._fetchall(sql, (*params, *extra, limit))]

    async def get_run_detail(self, org: str, run_id: str) -> RunDetail | None:
        async def op(conn: Conn) -> RunDetail | None:
            cur = await conn.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE org = %s AND id = %s", (org, run_id)
            )
            row = await cur.fetchone()
            if row is None:
                return None
            run = run_from_row(row)
            steps = await (await conn.execute(runs.STEPS_IN_ORDER, (run.key,))).fetchall()
            tries = await (await conn.execute(runs.ATTEMPTS_IN_ORDER, (run.key,))).fetchall()
            waits = await (await conn.execute(runs.WAITS_IN_ORDER, (run.key,))).fetchall()
            return RunDetail(
                run,
                [step_from_row(r) for r in steps],
                [attempt_from_row(r) for r in tries],
                [wait_from_row(r) for r in waits],
            )

        return await self._tx(op, read_only=True)

    # the worker's side ----------------------------------------------------------------
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
        if not loops or limit <= 0:
            return []
        sql, params = runs.claim(org, worker, loops, limit, lease_now, lease_s, now, run_id)
        # idempotent enough: if a COMMIT's answer is lost, the runs it claimed are
        # released by lease expiry and claimed again
        return runs.claimed(await self._fetchall(sql, params))

    async def renew_leases(
        self, worker: str, run_ids: list[str], lease_now: float, lease_s: float
    ) -> set[str]:
        return await self._writer.run(runs.renew(worker, run_ids, lease_now, lease_s))

    async def load_history(self, run_id: str, generation: int) -> History:
        async def op(conn: Conn) -> History:
            history = History()
            for row in await (await conn.execute(runs.STEPS_OF_RUN, (run_id,))).fetchall():
                history.steps[row[1]] = step_from_row(row)
            for row in await (await conn.execute(runs.WAITS_OF_RUN, (run_id,))).fetchall():
                history.waits[row[1]] = wait_from_row(row)
            cur = await conn.execute(runs.FAILURES_OF_RUN, (run_id, generation))
            for step, failed, retry_at in await cur.fetchall():
                history.failures[step] = (int(failed), retry_at)
            return history

        return await self._tx(op)

    async def record_step(
        self, lease: Lease, step: StepRecord, consume_signal: int | None = None
    ) -> str:
        return await self._writer.run(runs.record_step(lease, step, consume_signal))

    async def record_failed_attempt(self, lease: Lease, attempt: AttemptRecord) -> str:
        return await self._writer.run(runs.record_failed_attempt(lease, attempt))

    async def open_wait(self, lease: Lease, wait: WaitRecord) -> tuple[WaitRecord, Signal | None]:
        return await self._writer.run(runs.open_wait(lease, wait))

    async def park_run(
        self, lease: Lease, wake_at: float | None, keys: list[str], now: float
    ) -> str:
        return await self._writer.run(runs.park(lease, wake_at, keys, now))

    async def finish_run(
        self,
        lease: Lease,
        status: str,
        output: str | None,
        error: dict[str, Any] | None,
        now: float,
    ) -> None:
        await self._writer.run(runs.finish(lease, status, output, error, now))

    async def record_summary(self, lease: Lease, summary: str | None, now: float) -> None:
        await self._writer.run(runs.summary(lease, summary, now))

    async def release_run(self, lease: Lease, now: float) -> None:
        await self._writer.run(runs.release(lease, now))

    # worker liveness (WorkerLiveness; see liveness.py) -----------------------------------
    async def register_worker(self, worker: str) -> None:
        try:
            await self._liveness.hold(worker)
        except psycopg.Error as exc:
            raise errors.translate(exc, self.settings.display) from exc

    async def unregister_worker(self, worker: str) -> None:
        await self._liveness.release(worker)

    async def reclaim_dead_workers(self, now: float) -> int:
        async def owners(conn: Conn) -> list[str]:
            cur = await conn.execute(
                "SELECT lease_owner FROM runs WHERE lease_owner IS NOT NULL "
                "UNION SELECT lease_owner FROM analysis_jobs WHERE lease_owner IS NOT NULL "
                f"UNION {DELIVERY_LEASE_OWNERS}"
            )
            return [row[0] for row in await cur.fetchall()]

        async def requeue(conn: Conn) -> int:
            await conn.execute(
                "UPDATE analysis_jobs SET lease_owner = NULL, lease_expires_at = NULL "
                "WHERE lease_owner = ANY(%s::text[])",
                (dead,),
            )
            await conn.execute(  # webhook deliveries it was sending: sent again now
                RELEASE_DEAD_DELIVERIES.format(marks="SELECT unnest(%s::text[])"), (dead,)
            )
            cur = await conn.execute(
                "UPDATE runs SET status = CASE WHEN status = 'running' THEN 'queued' "
                "ELSE status END, lease_owner = NULL, lease_expires_at = NULL, "
                "updated_at = %s WHERE lease_owner = ANY(%s::text[])",
                (now, dead),
            )
            return cur.rowcount

        try:
            dead = await self._liveness.dead(await self._tx(owners, read_only=True))
        except psycopg.Error as exc:
            raise errors.translate(exc, self.settings.display) from exc
        if not dead:
            return 0
        moved = await self._tx(requeue)
        self._hint_all()  # other processes' workers may take them too
        return moved

    async def fire_timers(self, org: str, now: float) -> tuple[int, float | None]:
        async def op(conn: Conn) -> tuple[int, float | None]:
            return await fire_timers_in(conn, org, now)

        return await self._tx(op)

    async def send_signal(
        self, org: str, run_id: str, key: str, payload_json: str, now: float
    ) -> bool:
        async def op(conn: Conn) -> bool:
            cur = await conn.execute(  # lock first: see runs.py on signals and parking
                "SELECT run_key FROM runs WHERE org = %s AND id = %s FOR NO KEY UPDATE",
                (org, run_id),
            )
            row = await cur.fetchone()
            if row is None:
                return False
            await conn.execute(
                "INSERT INTO signals (run_id, key, payload, created_at) VALUES (%s, %s, %s, %s)",
                (row[0], key, payload_json, now),
            )
            await conn.execute(
                "UPDATE runs SET status = 'queued', wake_at = NULL, updated_at = %s "
                "WHERE run_key = %s AND status = 'waiting'",
                (now, row[0]),
            )
            return True

        return await self._tx(op, idempotent=False, notify=org)

    # operators ------------------------------------------------------------------------
    async def cancel_run(self, org: str, run_id: str, now: float) -> RunRecord:
        return await self._tx(lambda c: operators.cancel(c, org, run_id, now), idempotent=False)

    async def pause_run(self, org: str, run_id: str, now: float) -> RunRecord:
        return await self._tx(lambda c: operators.pause(c, org, run_id, now))

    async def resume_run(self, org: str, run_id: str, now: float, lease_now: float) -> RunRecord:
        return await self._tx(
            lambda c: operators.resume(c, org, run_id, now, lease_now), notify=org
        )

    async def retry_run(self, org: str, run_id: str, now: float) -> RunRecord:
        return await self._tx(
            lambda c: operators.retry(c, org, run_id, now), idempotent=False, notify=org
        )

    async def restart_run(self, org: str, run_id: str, from_step: str, now: float) -> RunRecord:
        return await self._tx(
            lambda c: operators.restart(c, org, run_id, from_step, now),
            idempotent=False,
            notify=org,
        )

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
        return await self._tx(
            lambda c: scans.create(
                c, org, run_id, step, scan_id, token_hash, metadata_json, now, expires_at
            )
        )

    async def latest_scan(self, org: str, run_id: str) -> ScanRecord | None:
        return await self._tx(lambda c: scans.latest(c, org, run_id))

    async def get_scan(self, org: str, scan_id: str) -> ScanRecord | None:
        return await self._tx(lambda c: scans.by_id(c, org, scan_id))

    async def scan_by_token(self, token_hash: str) -> ScanRecord | None:
        return await self._tx(lambda c: scans.by_token(c, token_hash))

    async def move_scan(
        self, token_hash: str, from_statuses: tuple[str, ...], to_status: str, now: float
    ) -> ScanRecord | None:
        # not idempotent (a rerun would find the scan moved already): no rerun after COMMIT
        return await self._tx(
            lambda c: scans.move(c, token_hash, from_statuses, to_status, now),
            idempotent=False,
        )

    async def finish_scan(
        self,
        scan_id: str,
        status: str,
        result_json: str | None,
        failure_reason: str | None,
        now: float,
    ) -> ScanRecord:
        scan = await self._tx(
            lambda c: scans.finish(c, scan_id, status, result_json, failure_reason, now)
        )
        self._notifier.hint(scan.org)
        return scan

    async def finish_open_scan(
        self,
        token_hash: str,
        from_statuses: tuple[str, ...],
        status: str,
        result_json: str | None,
        failure_reason: str | None,
        now: float,
    ) -> ScanRecord | None:
        # not idempotent (a rerun would find the scan finished already): no rerun after COMMIT
        scan = await self._tx(
            lambda c: scans.finish_open(
                c, token_hash, from_statuses, status, result_json, failure_reason, now
            ),
            idempotent=False,
        )
        if scan is not None:
            self._notifier.hint(scan.org)
        return scan

    async def accept_upload(
        self,
        token_hash: str,
        from_statuses: tuple[str, ...],
        kind: str,
        payload: str,
        now: float,
    ) -> ScanRecord | None:
        # not idempotent (a rerun would find the scan moved already): no rerun after COMMIT
        return await self._tx(
            lambda c: analysis.accept_upload(c, token_hash, from_statuses, kind, payload, now),
            idempotent=False,
        )

    async def claim_analyses(
        self, worker: str, limit: int, lease_now: float, lease_s: float
    ) -> list[AnalysisJob]:
        if limit <= 0:
            return []
        return await self._tx(
            lambda c: analysis.claim(c, worker, limit, lease_now, lease_s), idempotent=False
        )

    # deploys --------------------------------------------------------------------------
    async def record_deploy(self, org: str, loop: str, version: str, now: float) -> None:
        async def op(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO deploys (org, loop, version, first_seen, last_seen) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (org, loop, version) DO UPDATE SET "
                "last_seen = excluded.last_seen, workers = deploys.workers + 1",
                (org, loop, version, now, now),
            )

        await self._tx(op, idempotent=False)

    async def list_deploys(self, org: str) -> list[DeployRecord]:
        rows = await self._fetchall(LIST_DEPLOYS, (org,))
        return [DeployRecord(*row) for row in rows]

    # organizations and API keys -------------------------------------------------------
    async def create_org(self, name: str, now: float) -> OrgRecord:
        return await self._tx(lambda c: orgs.create_org(c, name, now), idempotent=False)

    async def ensure_org(self, name: str, now: float) -> OrgRecord:
        return await self._tx(lambda c: orgs.ensure_org(c, name, now))

    async def get_org(self, name: str) -> OrgRecord | None:
        return await self._tx(lambda c: orgs.get_org(c, name))

    async def list_orgs(self) -> list[OrgRecord]:
        return await self._tx(orgs.list_orgs)

    async def create_key(self, org: str, key_id: str, key_hash: str, now: float) -> KeyRecord:
        return await self._tx(
            lambda c: orgs.create_key(c, org, key_id, key_hash, now), idempotent=False
        )

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        return await self._tx(lambda c: orgs.key_by_hash(c, key_hash))

    async def list_keys(self, org: str) -> list[KeyRecord]:
        return await self._tx(lambda c: orgs.list_keys(c, org))

    async def revoke_key(self, key_id: str, now: float) -> KeyRecord:
        return await self._tx(lambda c: orgs.revoke_key(c, key_id, now))

    async def stats(self, steps_since: float) -> StoreStats:
        return await self._tx(lambda c: orgs.stats(c, steps_since))  # folds: writes

    # the encryption layer (pulseloop.store.sealed) ------------------------------------
    async def payload_sql(
        self, statements: Sequence[tuple[str, tuple[Any, ...]]]
    ) -> list[list[tuple[Any, ...]]]:
        async def op(conn: Conn) -> list[list[tuple[Any, ...]]]:
            results = []
            for sql, params in statements:  # written once with ? placeholders
                cur = await conn.execute(sql.replace("?", "%s"), params)
                results.append(list(await cur.fetchall()) if cur.description else [])
            return results

        # compare-and-set updates and key inserts with fresh ids: safe to run again
        return await self._tx(op)
