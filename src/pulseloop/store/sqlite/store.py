"""The SQLite backend: embedded, WAL, synced commits, group commit.

Every method builds a small function over a connection and hands it to the
:class:`~pulseloop.store.sqlite.database.Database` thread, which batches concurrent calls
into one transaction. Fenced writes check the lease inside that same transaction.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from pulseloop.store import family
from pulseloop.store.base import (
    AnalysisJob,
    AttemptRecord,
    DeployRecord,
    History,
    KeyRecord,
    Lease,
    LeaseLost,
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
from pulseloop.store.sql import LIST_DEPLOYS, lite
from pulseloop.store.sqlite import flow, operators, orgs, outbox, scans
from pulseloop.store.sqlite.audit import SqliteAudit
from pulseloop.store.sqlite.children import SqliteChildren, run_ended
from pulseloop.store.sqlite.database import Database
from pulseloop.store.sqlite.deadlines import SqliteDeadlines
from pulseloop.store.sqlite.flow import SqliteFlow
from pulseloop.store.sqlite.liveness import WorkerLocks
from pulseloop.store.sqlite.rows import (
    ATTEMPT_COLUMNS,
    RUN_COLUMNS,
    STEP_COLUMNS,
    WAIT_COLUMNS,
    attempt_from_row,
    attempt_to_row,
    dump_error,
    run_from_row,
    step_from_row,
    step_to_row,
    wait_from_row,
    wait_to_row,
)
from pulseloop.store.sqlite.schedules import SqliteSchedules
from pulseloop.store.sqlite.schema import check_version, migrate, prepare_path
from pulseloop.store.sqlite.sessions import SqliteSessions
from pulseloop.store.sqlite.timers import SqliteTimerPass, fire_timers_in
from pulseloop.store.webhooks import RELEASE_DEAD_DELIVERIES, SqlWebhooks

_STEPS_SQL = f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY seq"
_ATTEMPTS_SQL = (
    f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE run_id = ? ORDER BY started_at, attempt"
)
_WAITS_SQL = f"SELECT {WAIT_COLUMNS} FROM waits WHERE run_id = ? ORDER BY seq"


def _fence(conn: sqlite3.Connection, lease: Lease, now: float, grow: int = 0) -> str:
    """Apply a write only while ``lease`` holds; return the run's status.

    A read, not an UPDATE: rewriting the run's row on every step cost a page write per
    step. The row is touched only the first time the run gains history (``grow``).
    """
    row = conn.execute(
        "SELECT status, history_len FROM runs WHERE run_key = ? AND lease_owner = ?",
        (lease.run_id, lease.worker),
    ).fetchone()
    if row is None:
        raise LeaseLost(lease.run_id)
    if grow and not row[1]:
        conn.execute(
            "UPDATE runs SET history_len = 1, updated_at = ? WHERE run_key = ?", (now, lease.run_id)
        )
    return str(row[0])


class SqliteStore(SqliteSchedules, SqliteDeadlines, SqliteChildren, SqliteTimerPass, SqliteFlow):
    """:class:`~pulseloop.store.base.Store` on one SQLite file."""

    def __init__(self, path: str, *, reserve_wal: bool = False) -> None:
        """``reserve_wal``: pre-grow the WAL (for workers; see ``database.reserve_wal``)."""
        self.path = path
        self._db = Database(path, reserve_wal=reserve_wal)
        self._locks = WorkerLocks(path)
        self.sessions = SqliteSessions(self._db.run)
        self.audit = SqliteAudit(self._db.run)
        self.webhooks = SqlWebhooks(self.payload_sql)

    def commit_inline_when(self, solo: Callable[[], bool]) -> None:
        self._db.inline_when = solo

    @property
    def commits(self) -> int:
        """Transactions committed so far (for benchmarks: steps per commit)."""
        return self._db.commits

    async def open(self) -> None:
        def setup() -> None:
            prepare_path(self.path)
            check_version(self.path)
            self._db.start(init=migrate)

        await asyncio.to_thread(setup)

    async def close(self) -> None:
        await self._db.stop()

    async def _run(self, fn: Any) -> Any:
        return await self._db.run(fn)

    async def _run_own(self, fn: Any) -> Any:
        """A write of the executing run itself: may commit inline (see ``Database.run``)."""
        return await self._db.run(fn, may_inline=True)

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
        def op(conn: sqlite3.Connection) -> tuple[RunRecord, bool]:
            select = f"SELECT {RUN_COLUMNS} FROM runs WHERE org = ? AND id = ?"
            row = conn.execute(select, (org, run_id)).fetchone()
            if row is not None:  # an idempotent trigger: the run this id already names
                return run_from_row(row), False
            taken = conn.execute("SELECT 1 FROM runs WHERE run_key = ?", (run_id,)).fetchone()
            key = run_id if taken is None else fallback_run_key(org, run_id)
            if flow_key is not None:
                flow.ensure_slot(conn, org, flow_key, loop, flow_limit)
            conn.execute(
                "INSERT INTO runs (org, id, loop, status, input, created_at, updated_at, "
                "run_key, deadline_at, trace_parent, priority, flow_key) "
                "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    org,
                    run_id,
                    loop,
                    input_json,
                    now,
                    now,
                    key,
                    deadline_at,
                    trace_parent,
                    priority,
                    flow_key,
                ),
            )
            return run_from_row(conn.execute(select, (org, run_id)).fetchone()), True

        result: tuple[RunRecord, bool] = await self._run(op)
        return result

    async def get_run(self, org: str, run_id: str) -> RunRecord | None:
        def op(conn: sqlite3.Connection) -> RunRecord | None:
            row = conn.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE org = ? AND id = ?", (org, run_id)
            ).fetchone()
            return None if row is None else run_from_row(row)

        result: RunRecord | None = await self._run(op)
        return result

    async def run_status(self, org: str, run_id: str) -> str | None:
        def op(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT status FROM runs WHERE org = ? AND id = ?", (org, run_id)
            ).fetchone()
            return None if row is None else str(row[0])

        result: str | None = await self._run(op)
        return result

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
        where, params = ["org = ?"], [org]
        for column, value in (("loop", loop), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if before is not None and before_id is not None:
            # the leading range keeps this a seek on the index (an OR alone is a walk)
            where.append("created_at <= ? AND (created_at < ? OR id < ?)")
            params += [before, before, before_id]  # type: ignore[list-item]
        elif before is not None:
            where.append("created_at < ?")
            params.append(before)  # type: ignore[arg-type]
        if since is not None:
            where.append("created_at >= ?")
            params.append(since)  # type: ignore[arg-type]
        sql = (
            f"SELECT {RUN_COLUMNS} FROM runs WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT ?"
        )

        def op(conn: sqlite3.Connection) -> list[RunRecord]:
            return [run_from_row(r) for r in conn.execute(sql, (*params, limit))]

        result: list[RunRecord] = await self._run(op)
        return result

    async def get_run_detail(self, org: str, run_id: str) -> RunDetail | None:
        def op(conn: sqlite3.Connection) -> RunDetail | None:
            row = conn.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE org = ? AND id = ?", (org, run_id)
            ).fetchone()
            if row is None:
                return None
            run = run_from_row(row)
            return RunDetail(
                run,
                [step_from_row(r) for r in conn.execute(_STEPS_SQL, (run.key,))],
                [attempt_from_row(r) for r in conn.execute(_ATTEMPTS_SQL, (run.key,))],
                [wait_from_row(r) for r in conn.execute(_WAITS_SQL, (run.key,))],
            )

        result: RunDetail | None = await self._run(op)
        return result

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
        # Two arms, each a range of an index (runs_ready for queued runs: highest priority,
        # then oldest; runs_leased for expired leases), so a claim reads the ready set only:
        # one OR over both states walked every run of the org (O(history) per claim).
        # INDEXED BY pins the plan: left to itself the planner prefers runs_loop_list, which
        # is ordered but holds history. Runs under a concurrency limit come from their keys'
        # free slots (flow.keyed_candidates) and are merged in by priority and age; when
        # there are none, the statement keeps the plain shape (no merge to pay for).
        marks = ", ".join("?" for _ in loops)
        only = "AND id = ?" if run_id is not None else ""
        match = f"org = ? AND loop IN ({marks}) {only}"
        unkeyed = (
            f"SELECT id, priority, created_at FROM runs INDEXED BY runs_ready WHERE {match} "
            "AND status = 'queued' AND flow_key IS NULL ORDER BY priority DESC, created_at "
            "LIMIT ?"
        )
        merged = (
            f"SELECT id FROM (SELECT * FROM ({unkeyed}) UNION ALL "
            "SELECT id, priority, created_at FROM runs WHERE org = ? "
            "AND id IN (SELECT value FROM json_each(?))) ORDER BY priority DESC, created_at "
            "LIMIT ?"
        )
        update = (
            "UPDATE runs SET status = 'running', lease_owner = ?, lease_expires_at = ?, "
            "updated_at = ?, started_at = COALESCE(started_at, ?) "
            "WHERE org = ? AND id IN (SELECT id FROM ({queued}) "
            "UNION ALL SELECT id FROM (SELECT id FROM runs INDEXED BY runs_leased "
            f"WHERE {match} "
            "AND status = 'running' AND lease_expires_at < ? ORDER BY lease_expires_at "
            "LIMIT ?) LIMIT ?) "
            f"RETURNING {RUN_COLUMNS}"
        )
        plain_sql, keyed_sql = update.format(queued=unkeyed), update.format(queued=merged)
        arm: list[Any] = [org, *loops] + ([run_id] if run_id is not None else [])
        head: list[Any] = [worker, lease_now + lease_s, now, now, org, *arm, limit]
        tail = [*arm, lease_now, limit, limit]

        def op(conn: sqlite3.Connection) -> list[RunRecord]:
            keyed = flow.keyed_candidates(conn, org, loops, limit, run_id)
            if keyed:
                rows = conn.execute(keyed_sql, [*head, org, json.dumps(keyed), limit, *tail])
            else:
                rows = conn.execute(plain_sql, [*head, *tail])
            return [run_from_row(r) for r in rows]

        if not loops or limit <= 0:
            return []
        result: list[RunRecord] = await self._run(op)
        return result

    async def renew_leases(
        self, worker: str, run_ids: list[str], lease_now: float, lease_s: float
    ) -> set[str]:
        def op(conn: sqlite3.Connection) -> set[str]:
            held = {
                row[0]
                for row in conn.execute(
                    "UPDATE runs SET lease_expires_at = ? WHERE lease_owner = ? RETURNING run_key",
                    (lease_now + lease_s, worker),
                )
            }
            return set(run_ids) - held

        result: set[str] = await self._run(op)
        return result

    async def load_history(self, run_id: str, generation: int) -> History:
        def op(conn: sqlite3.Connection) -> History:
            history = History()
            for row in conn.execute(
                f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ?", (run_id,)
            ):
                history.steps[row[1]] = step_from_row(row)
            for row in conn.execute(
                f"SELECT {WAIT_COLUMNS} FROM waits WHERE run_id = ?", (run_id,)
            ):
                history.waits[row[1]] = wait_from_row(row)
            for step, failed, retry_at in conn.execute(
                "SELECT step, count(*), max(retry_at) FROM attempts WHERE run_id = ? "
                "AND generation = ? AND status = 'failed' GROUP BY step",
                (run_id, generation),
            ):
                history.failures[step] = (failed, retry_at)
            return history

        result: History = await self._run_own(op)
        return result

    async def record_step(
        self, lease: Lease, step: StepRecord, consume_signal: int | None = None
    ) -> str:
        step_row = step_to_row(step)

        def op(conn: sqlite3.Connection) -> str:
            status = _fence(conn, lease, step.finished_at, grow=1)
            conn.execute(
                f"INSERT OR IGNORE INTO steps ({STEP_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                step_row,
            )
            if step.kind != "do":  # a resolved wait: it is a step record now
                conn.execute(
                    "DELETE FROM waits WHERE run_id = ? AND name = ?", (step.run_id, step.name)
                )
            if consume_signal is not None:
                conn.execute(
                    "UPDATE signals SET consumed_by = ? WHERE id = ?", (step.name, consume_signal)
                )
            return status

        result: str = await self._run_own(op)
        return result

    async def record_failed_attempt(self, lease: Lease, attempt: AttemptRecord) -> str:
        row = attempt_to_row(attempt)

        def op(conn: sqlite3.Connection) -> str:
            status = _fence(conn, lease, attempt.finished_at, grow=1)
            conn.execute(
                f"INSERT OR REPLACE INTO attempts ({ATTEMPT_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return status

        result: str = await self._run_own(op)
        return result

    async def open_wait(self, lease: Lease, wait: WaitRecord) -> tuple[WaitRecord, Signal | None]:
        def op(conn: sqlite3.Connection) -> tuple[WaitRecord, Signal | None]:
            _fence(conn, lease, wait.created_at, grow=1)
            conn.execute(
                f"INSERT OR IGNORE INTO waits ({WAIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                wait_to_row(wait),
            )
            stored = wait_from_row(
                conn.execute(
                    f"SELECT {WAIT_COLUMNS} FROM waits WHERE run_id = ? AND name = ?",
                    (wait.run_id, wait.name),
                ).fetchone()
            )
            signal = None
            if stored.key is not None:
                row = conn.execute(
                    "SELECT id, run_id, key, payload, created_at FROM signals WHERE run_id = ? "
                    "AND key = ? AND consumed_by IS NULL ORDER BY id LIMIT 1",
                    (wait.run_id, stored.key),
                ).fetchone()
                signal = None if row is None else Signal(*row)
            return stored, signal

        result: tuple[WaitRecord, Signal | None] = await self._run_own(op)
        return result

    async def park_run(
        self, lease: Lease, wake_at: float | None, keys: list[str], now: float
    ) -> str:
        keys, children = family.split_keys(keys)  # child waits: ready all together
        marks = ", ".join("?" for _ in keys)

        def op(conn: sqlite3.Connection) -> str:
            status = _fence(conn, lease, now)
            ready = wake_at is not None and wake_at <= now
            if children and not ready:
                answered = f"SELECT {lite(family.CHILDREN_ANSWERED)}"
                ready = bool(conn.execute(answered, (lease.run_id,)).fetchone()[0])
            if keys and not ready:
                ready = (
                    conn.execute(
                        f"SELECT 1 FROM signals WHERE run_id = ? AND key IN ({marks}) "
                        "AND consumed_by IS NULL LIMIT 1",
                        (lease.run_id, *keys),
                    ).fetchone()
                    is not None
                )
            if status == "running":
                status = "queued" if ready else "waiting"
            conn.execute(
                "UPDATE runs SET status = ?, wake_at = ?, lease_owner = NULL, "
                "lease_expires_at = NULL WHERE run_key = ?",
                (status, None if status == "queued" else wake_at, lease.run_id),
            )
            return status

        result: str = await self._run_own(op)
        return result

    async def finish_run(
        self,
        lease: Lease,
        status: str,
        output: str | None,
        error: dict[str, Any] | None,
        now: float,
    ) -> None:
        error_text = dump_error(error)

        def op(conn: sqlite3.Connection) -> None:
            _fence(conn, lease, now)
            conn.execute(
                "UPDATE runs SET status = ?, output = ?, error = ?, finished_at = ?, "
                "wake_at = NULL, lease_owner = NULL, lease_expires_at = NULL WHERE run_key = ?",
                (status, output, error_text, now, lease.run_id),
            )
            conn.execute("DELETE FROM waits WHERE run_id = ?", (lease.run_id,))
            outbox.run_ended(conn, lease.run_id, status)
            run_ended(conn, lease.run_id, now)

        await self._run_own(op)

    async def record_summary(self, lease: Lease, summary: str | None, now: float) -> None:
        def op(conn: sqlite3.Connection) -> None:
            _fence(conn, lease, now)
            conn.execute("UPDATE runs SET summary = ? WHERE run_key = ?", (summary, lease.run_id))

        await self._run_own(op)

    async def release_run(self, lease: Lease, now: float) -> None:
        def op(conn: sqlite3.Connection) -> None:
            _fence(conn, lease, now)
            conn.execute(
                "UPDATE runs SET status = CASE status WHEN 'running' THEN 'queued' "
                "ELSE status END, lease_owner = NULL, lease_expires_at = NULL WHERE run_key = ?",
                (lease.run_id,),
            )

        await self._run(op)

    # worker liveness (WorkerLiveness) ------------------------------------------------
    async def register_worker(self, worker: str) -> None:
        await asyncio.to_thread(self._locks.hold, worker)

    async def unregister_worker(self, worker: str) -> None:
        self._locks.release(worker)

    async def reclaim_dead_workers(self, now: float) -> int:
        dead = await asyncio.to_thread(self._locks.dead)
        if not dead:
            return 0
        marks = ", ".join("?" for _ in dead)

        def op(conn: sqlite3.Connection) -> int:
            conn.execute(  # analyses a dead process held: claimable again at once
                "UPDATE analysis_jobs SET lease_owner = NULL, lease_expires_at = NULL "
                f"WHERE lease_owner IN ({marks})",
                dead,
            )
            conn.execute(RELEASE_DEAD_DELIVERIES.format(marks=marks), dead)  # sent again now
            return conn.execute(
                "UPDATE runs SET status = CASE status WHEN 'running' THEN 'queued' "
                "ELSE status END, lease_owner = NULL, lease_expires_at = NULL, updated_at = ? "
                f"WHERE lease_owner IN ({marks})",
                (now, *dead),
            ).rowcount

        result: int = await self._run(op)
        return result

    async def fire_timers(self, org: str, now: float) -> tuple[int, float | None]:
        def op(conn: sqlite3.Connection) -> tuple[int, float | None]:
            return fire_timers_in(conn, org, now)

        result: tuple[int, float | None] = await self._run(op)
        return result

    async def send_signal(
        self, org: str, run_id: str, key: str, payload_json: str, now: float
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT run_key FROM runs WHERE org = ? AND id = ?", (org, run_id)
            ).fetchone()
            if row is None:
                return False
            conn.execute(
                "INSERT INTO signals (run_id, key, payload, created_at) VALUES (?, ?, ?, ?)",
                (row[0], key, payload_json, now),
            )
            conn.execute(
                "UPDATE runs SET status = 'queued', wake_at = NULL, updated_at = ? "
                "WHERE run_key = ? AND status = 'waiting'",
                (now, row[0]),
            )
            return True

        result: bool = await self._run(op)
        return result

    # operators ----------------------------------------------------------------------
    async def cancel_run(self, org: str, run_id: str, now: float) -> RunRecord:
        result: RunRecord = await self._run(lambda c: operators.cancel(c, org, run_id, now))
        return result

    async def pause_run(self, org: str, run_id: str, now: float) -> RunRecord:
        result: RunRecord = await self._run(lambda c: operators.pause(c, org, run_id, now))
        return result

    async def resume_run(self, org: str, run_id: str, now: float, lease_now: float) -> RunRecord:
        result: RunRecord = await self._run(
            lambda c: operators.resume(c, org, run_id, now, lease_now)
        )
        return result

    async def retry_run(self, org: str, run_id: str, now: float) -> RunRecord:
        result: RunRecord = await self._run(lambda c: operators.retry(c, org, run_id, now))
        return result

    async def restart_run(self, org: str, run_id: str, from_step: str, now: float) -> RunRecord:
        result: RunRecord = await self._run(
            lambda c: operators.restart(c, org, run_id, from_step, now)
        )
        return result

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
        result: ScanRecord = await self._run(
            lambda c: scans.create(
                c, org, run_id, step, scan_id, token_hash, metadata_json, now, expires_at
            )
        )
        return result

    async def latest_scan(self, org: str, run_id: str) -> ScanRecord | None:
        result: ScanRecord | None = await self._run(lambda c: scans.latest(c, org, run_id))
        return result

    async def get_scan(self, org: str, scan_id: str) -> ScanRecord | None:
        result: ScanRecord | None = await self._run(lambda c: scans.by_id(c, org, scan_id))
        return result

    async def scan_by_token(self, token_hash: str) -> ScanRecord | None:
        result: ScanRecord | None = await self._run(lambda c: scans.by_token(c, token_hash))
        return result

    async def move_scan(
        self, token_hash: str, from_statuses: tuple[str, ...], to_status: str, now: float
    ) -> ScanRecord | None:
        result: ScanRecord | None = await self._run(
            lambda c: scans.move(c, token_hash, from_statuses, to_status, now)
        )
        return result

    async def finish_scan(
        self,
        scan_id: str,
        status: str,
        result_json: str | None,
        failure_reason: str | None,
        now: float,
    ) -> ScanRecord:
        result: ScanRecord = await self._run(
            lambda c: scans.finish(c, scan_id, status, result_json, failure_reason, now)
        )
        return result

    async def finish_open_scan(
        self,
        token_hash: str,
        from_statuses: tuple[str, ...],
        status: str,
        result_json: str | None,
        failure_reason: str | None,
        now: float,
    ) -> ScanRecord | None:
        result: ScanRecord | None = await self._run(
            lambda c: scans.finish_open(
                c, token_hash, from_statuses, status, result_json, failure_reason, now
            )
        )
        return result

    async def accept_upload(
        self,
        token_hash: str,
        from_statuses: tuple[str, ...],
        kind: str,
        payload: str,
        now: float,
    ) -> ScanRecord | None:
        result: ScanRecord | None = await self._run(
            lambda c: scans.accept_upload(c, token_hash, from_statuses, kind, payload, now)
        )
        return result

    async def claim_analyses(
        self, worker: str, limit: int, lease_now: float, lease_s: float
    ) -> list[AnalysisJob]:
        if limit <= 0:
            return []
        result: list[AnalysisJob] = await self._run(
            lambda c: scans.claim_analyses(c, worker, limit, lease_now, lease_s)
        )
        return result

    # deploys ------------------------------------------------------------------------
    async def record_deploy(self, org: str, loop: str, version: str, now: float) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO deploys (org, loop, version, first_seen, last_seen) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (org, loop, version) DO UPDATE SET "
                "last_seen = excluded.last_seen, workers = workers + 1",
                (org, loop, version, now, now),
            )

        await self._run(op)

    async def list_deploys(self, org: str) -> list[DeployRecord]:
        def op(conn: sqlite3.Connection) -> list[DeployRecord]:
            return [DeployRecord(*row) for row in conn.execute(lite(LIST_DEPLOYS), (org,))]

        result: list[DeployRecord] = await self._run(op)
        return result

    # organizations and API keys --------------------------------------------------------
    async def create_org(self, name: str, now: float) -> OrgRecord:
        result: OrgRecord = await self._run(lambda c: orgs.create_org(c, name, now))
        return result

    async def ensure_org(self, name: str, now: float) -> OrgRecord:
        result: OrgRecord = await self._run(lambda c: orgs.ensure_org(c, name, now))
        return result

    async def get_org(self, name: str) -> OrgRecord | None:
        result: OrgRecord | None = await self._run(lambda c: orgs.get_org(c, name))
        return result

    async def list_orgs(self) -> list[OrgRecord]:
        result: list[OrgRecord] = await self._run(orgs.list_orgs)
        return result

    async def create_key(self, org: str, key_id: str, key_hash: str, now: float) -> KeyRecord:
        result: KeyRecord = await self._run(
            lambda c: orgs.create_key(c, org, key_id, key_hash, now)
        )
        return result

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        result: KeyRecord | None = await self._run(lambda c: orgs.key_by_hash(c, key_hash))
        return result

    async def list_keys(self, org: str) -> list[KeyRecord]:
        result: list[KeyRecord] = await self._run(lambda c: orgs.list_keys(c, org))
        return result

    async def revoke_key(self, key_id: str, now: float) -> KeyRecord:
        result: KeyRecord = await self._run(lambda c: orgs.revoke_key(c, key_id, now))
        return result

    async def stats(self, steps_since: float) -> StoreStats:
        result: StoreStats = await self._run(lambda c: orgs.stats(c, steps_since))
        return result

    # the encryption layer (pulseloop.store.sealed) ------------------------------------
    async def payload_sql(
        self, statements: Sequence[tuple[str, tuple[Any, ...]]]
    ) -> list[list[tuple[Any, ...]]]:
        def op(conn: sqlite3.Connection) -> list[list[tuple[Any, ...]]]:
            return [[tuple(r) for r in conn.execute(sql, p).fetchall()] for sql, p in statements]

        result: list[list[tuple[Any, ...]]] = await self._run(op)
        return result
