"""The worker's SQL on PostgreSQL: claims, fenced writes, timers and signals.

Claims. One statement, under READ COMMITTED: ``FOR UPDATE SKIP LOCKED`` arms, one
over runs whose lease expired (their worker died; oldest lease first), one over
unkeyed queued runs (highest priority, then oldest) and one over runs under a concurrency
limit (their keys' free slots: see ``flow.py``), each reading a partial index, feed
``UPDATE runs ... WHERE id IN (...) RETURNING``. Concurrent claimers skip each other's
rows instead of queueing on them, and a row whose state changed before it was locked is
re-checked against the arm's conditions by PostgreSQL before it is taken. Considered:
NOWAIT (fails the whole claim on one busy row), REPEATABLE READ (serialization failures
under concurrency), advisory locks per run (a second lock table to keep in step).

Signals and parking. A run parks only after checking for signals on its keys, and a
signal sender wakes the run only if it is parked; under READ COMMITTED both checks could
miss the other's uncommitted write. So every signal producer (``send_signal``, scan
outcomes, scan expiry) locks the run row *before* inserting the signal, and a parking
worker locks it before checking: whichever locks second sees the first's commit.

Timers fire exactly once: the re-queueing UPDATE re-checks ``status = 'waiting'`` on the
locked row, so a second worker racing for the same timer finds it queued and skips it.
"""

from __future__ import annotations

from typing import Any

from pulseloop.store import family
from pulseloop.store.base import (
    AttemptRecord,
    Lease,
    LeaseLost,
    RunRecord,
    Signal,
    StepRecord,
    WaitRecord,
)
from pulseloop.store.postgres import flow, outbox
from pulseloop.store.postgres.children import ended_statements
from pulseloop.store.postgres.writer import Rows, Statement, Write
from pulseloop.store.sqlite.rows import (
    ATTEMPT_COLUMNS,
    RUN_COLUMNS,
    STEP_COLUMNS,
    WAIT_COLUMNS,
    dump_error,
    run_from_row,
    wait_from_row,
)

SIGNAL_COLUMNS = "id, run_id, key, payload, created_at"

_FENCE = Statement(
    "SELECT status, history_len FROM runs WHERE run_key = %(run)s AND lease_owner = %(worker)s "
    "FOR NO KEY UPDATE",
)
_HELD = "EXISTS (SELECT 1 FROM runs WHERE run_key = %(run)s AND lease_owner = %(worker)s)"
_GROW = (
    "grow AS (UPDATE runs SET history_len = 1, updated_at = %(now)s::float8 "
    "WHERE run_key = %(run)s AND lease_owner = %(worker)s AND history_len = 0)"
)


def _fence(lease: Lease) -> Statement:
    return Statement(_FENCE.sql, {"run": lease.run_id, "worker": lease.worker})


def _status(lease: Lease, rows: list[Rows]) -> str:
    """The run's status from the fence's rows; LeaseLost if the fence found nothing."""
    if not rows[0]:
        raise LeaseLost(lease.run_id)
    return str(rows[0][0][0])


def _lease_params(lease: Lease, **more: Any) -> dict[str, Any]:
    return {"run": lease.run_id, "worker": lease.worker, **more}


# claims and leases ------------------------------------------------------------------
def claim(
    org: str,
    worker: str,
    loops: list[str],
    limit: int,
    lease_now: float,
    lease_s: float,
    now: float,
    run_id: str | None,
) -> tuple[str, dict[str, Any]]:
    """The claim statement and its parameters."""
    only = "AND id = %(only)s" if run_id is not None else ""
    match = f"org = %(org)s AND loop = ANY(%(loops)s::text[]) {only}"
    sql = (
        f"WITH stale AS (SELECT run_key FROM runs WHERE {match} AND status = 'running' "
        "AND lease_expires_at < %(lease_now)s ORDER BY lease_expires_at LIMIT %(limit)s "
        "FOR UPDATE SKIP LOCKED), "
        f"fresh AS (SELECT run_key, priority, created_at FROM runs WHERE {match} "
        "AND status = 'queued' AND flow_key IS NULL "
        "ORDER BY priority DESC, created_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
        f"{flow.keyed_arms(match, run_id is not None)}, "
        "queued AS (SELECT run_key FROM (SELECT * FROM fresh UNION ALL SELECT * FROM keyed) "
        "AS q ORDER BY priority DESC, created_at LIMIT %(limit)s) "
        "UPDATE runs SET status = 'running', lease_owner = %(worker)s, "
        "lease_expires_at = %(expires)s, updated_at = %(now)s, "
        "started_at = COALESCE(started_at, %(now)s) "
        "WHERE run_key IN (SELECT run_key FROM (SELECT run_key FROM stale UNION ALL "
        f"SELECT run_key FROM queued) AS ready LIMIT %(limit)s) RETURNING {RUN_COLUMNS}"
    )
    params = {
        "org": org, "loops": loops, "only": run_id, "lease_now": lease_now, "limit": limit,
        "worker": worker, "expires": lease_now + lease_s, "now": now,
    }  # fmt: skip
    return sql, params


def claimed(rows: Rows) -> list[RunRecord]:
    """Claimed runs, oldest first (the UPDATE returns them in no particular order)."""
    return sorted((run_from_row(r) for r in rows), key=lambda r: (r.created_at, r.id))


def renew(worker: str, run_ids: list[str], lease_now: float, lease_s: float) -> Write[set[str]]:
    """Extend every lease the worker holds; answer the ids it no longer holds."""

    def result(rows: list[Rows]) -> set[str]:
        return set(run_ids) - {r[0] for r in rows[0]}

    return Write(
        (
            Statement(
                "UPDATE runs SET lease_expires_at = %s WHERE lease_owner = %s RETURNING run_key",
                (lease_now + lease_s, worker),
            ),
        ),
        result,
    )


# fenced writes ------------------------------------------------------------------------
def record_step(lease: Lease, step: StepRecord, consume_signal: int | None) -> Write[str]:
    """Insert the step's final record (first one wins), drop its wait, consume a signal."""
    params = _lease_params(
        lease,
        now=step.finished_at, name=step.name, seq=step.seq, kind=step.kind,
        status=step.status, output=step.output, error=dump_error(step.error),
        attempts=step.attempts, started=step.started_at, finished=step.finished_at,
        version=step.version, resolves_wait=step.kind != "do", signal=consume_signal,
    )  # fmt: skip
    sql = (
        f"WITH {_GROW}, "
        f"step AS (INSERT INTO steps ({STEP_COLUMNS}) SELECT %(run)s, %(name)s, %(seq)s::int, "
        "%(kind)s, %(status)s, %(output)s::text, %(error)s::text, %(attempts)s::int, "
        f"%(started)s::float8, %(finished)s::float8, %(version)s::text WHERE {_HELD} "
        "ON CONFLICT (run_id, name) DO NOTHING), "
        "wait AS (DELETE FROM waits WHERE run_id = %(run)s AND name = %(name)s "
        f"AND %(resolves_wait)s::bool AND {_HELD}), "
        "consumed AS (UPDATE signals SET consumed_by = %(name)s WHERE id = %(signal)s::bigint "
        f"AND run_id = %(run)s AND {_HELD}) "
        "SELECT 1"
    )
    return Write(
        (_fence(lease), Statement(sql, params)),
        lambda rows: _status(lease, rows),
        lease=lease,
    )


def record_failed_attempt(lease: Lease, a: AttemptRecord) -> Write[str]:
    """Insert (or replace) a failed attempt that will be retried."""
    params = _lease_params(
        lease,
        now=a.finished_at, step=a.step, generation=a.generation, attempt=a.attempt,
        status=a.status, started=a.started_at, finished=a.finished_at,
        error=dump_error(a.error), retry_at=a.retry_at, version=a.version, by=a.worker,
    )  # fmt: skip
    sql = (
        f"WITH {_GROW} "
        f"INSERT INTO attempts ({ATTEMPT_COLUMNS}) SELECT %(run)s, %(step)s, "
        "%(generation)s::int, %(attempt)s::int, %(status)s, %(started)s::float8, "
        "%(finished)s::float8, %(error)s::text, %(retry_at)s::float8, %(version)s::text, "
        f"%(by)s::text WHERE {_HELD} "
        "ON CONFLICT (run_id, step, generation, attempt) DO UPDATE SET "
        "status = excluded.status, started_at = excluded.started_at, "
        "finished_at = excluded.finished_at, error = excluded.error, "
        "retry_at = excluded.retry_at, version = excluded.version, worker = excluded.worker"
    )
    return Write(
        (_fence(lease), Statement(sql, params)),
        lambda rows: _status(lease, rows),
        lease=lease,
    )


def open_wait(lease: Lease, wait: WaitRecord) -> Write[tuple[WaitRecord, Signal | None]]:
    """Create the wait unless it exists; read it back with its oldest pending signal."""
    params = _lease_params(
        lease,
        now=wait.created_at, name=wait.name, seq=wait.seq, kind=wait.kind, key=wait.key,
        deadline=wait.deadline_at, created=wait.created_at,
    )  # fmt: skip
    insert = (
        f"WITH {_GROW}, "
        f"made AS (INSERT INTO waits ({WAIT_COLUMNS}) SELECT %(run)s, %(name)s, %(seq)s::int, "
        "%(kind)s, %(key)s::text, %(deadline)s::float8, %(created)s::float8 "
        f"WHERE {_HELD} ON CONFLICT (run_id, name) DO NOTHING RETURNING {WAIT_COLUMNS}) "
        f"SELECT {WAIT_COLUMNS} FROM made UNION ALL "
        f"SELECT {WAIT_COLUMNS} FROM waits WHERE run_id = %(run)s AND name = %(name)s"
    )
    signal = (
        "SELECT s.id, s.run_id, s.key, s.payload, s.created_at FROM signals s "
        "JOIN waits w ON w.run_id = s.run_id AND w.key = s.key "
        "WHERE w.run_id = %(run)s AND w.name = %(name)s AND s.consumed_by IS NULL "
        "ORDER BY s.id LIMIT 1"
    )

    def result(rows: list[Rows]) -> tuple[WaitRecord, Signal | None]:
        _status(lease, rows)
        stored = wait_from_row(rows[1][0])
        found = rows[2][0] if rows[2] else None
        return stored, None if found is None else Signal(*found)

    return Write(
        (_fence(lease), Statement(insert, params), Statement(signal, params)),
        result,
        lease=lease,
    )


def park(lease: Lease, wake_at: float | None, keys: list[str], now: float) -> Write[str]:
    """Release the run as waiting, or straight back to queued if it is due already."""
    keys, children = family.split_keys(keys)  # child waits: ready all together
    params = _lease_params(
        lease, wake=wake_at, keys=keys, due=wake_at is not None and wake_at <= now,
        children=children,
    )  # fmt: skip
    answered = family.CHILDREN_ANSWERED.replace("%s", "%(run)s")
    sql = (
        "WITH next AS (SELECT CASE WHEN status <> 'running' THEN status "
        "WHEN %(due)s::bool OR EXISTS (SELECT 1 FROM signals WHERE run_id = %(run)s "
        "AND key = ANY(%(keys)s::text[]) AND consumed_by IS NULL) "
        f"OR (%(children)s::bool AND {answered}) THEN 'queued' "
        "ELSE 'waiting' END AS status FROM runs "
        "WHERE run_key = %(run)s AND lease_owner = %(worker)s) "
        "UPDATE runs SET status = next.status, lease_owner = NULL, lease_expires_at = NULL, "
        "wake_at = CASE WHEN next.status = 'queued' THEN NULL ELSE %(wake)s::float8 END "
        "FROM next WHERE runs.run_key = %(run)s AND runs.lease_owner = %(worker)s "
        "RETURNING runs.status"
    )

    def result(rows: list[Rows]) -> str:
        _status(lease, rows)
        return str(rows[1][0][0])

    return Write((_fence(lease), Statement(sql, params)), result, lease=lease)


def finish(
    lease: Lease, status: str, output: str | None, error: dict[str, Any] | None, now: float
) -> Write[None]:
    """Record the run's end and release it; its open waits go."""
    params = _lease_params(lease, status=status, output=output, error=dump_error(error), now=now)
    sql = (
        "WITH done AS (UPDATE runs SET status = %(status)s, output = %(output)s::text, "
        "error = %(error)s::text, finished_at = %(now)s::float8, wake_at = NULL, "
        "lease_owner = NULL, lease_expires_at = NULL "
        "WHERE run_key = %(run)s AND lease_owner = %(worker)s RETURNING run_key) "
        "DELETE FROM waits WHERE run_id IN (SELECT run_key FROM done)"
    )

    def result(rows: list[Rows]) -> None:
        _status(lease, rows)

    ended = ended_statements(lease.run_id, now)  # parent locked before it is signalled
    statements = (
        _fence(lease), ended[0], Statement(sql, params),
        outbox.run_ended_statement(lease.run_id, status), *ended[1:],
    )  # fmt: skip
    return Write(statements, result, lease=lease)


def summary(lease: Lease, line: str | None, now: float) -> Write[None]:
    """Set the run's summary line for run lists."""
    params = _lease_params(lease, summary=line, now=now)
    sql = (
        "UPDATE runs SET summary = %(summary)s::text "
        "WHERE run_key = %(run)s AND lease_owner = %(worker)s"
    )

    def result(rows: list[Rows]) -> None:
        _status(lease, rows)

    return Write((_fence(lease), Statement(sql, params)), result, lease=lease)


def release(lease: Lease, now: float) -> Write[None]:
    """Give the run back: a paused run stays paused, a running one is queued again at
    once (its worker is stopping), so another worker continues it without waiting for
    the lease to expire."""
    params = _lease_params(lease, now=now)
    sql = (
        "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL, "
        "status = CASE WHEN status = 'running' THEN 'queued' ELSE status END, "
        "updated_at = %(now)s::float8 WHERE run_key = %(run)s AND lease_owner = %(worker)s"
    )

    def result(rows: list[Rows]) -> None:
        _status(lease, rows)

    return Write((_fence(lease), Statement(sql, params)), result, lease=lease, notify=True)


# history -------------------------------------------------------------------------------
STEPS_OF_RUN = f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = %s"
WAITS_OF_RUN = f"SELECT {WAIT_COLUMNS} FROM waits WHERE run_id = %s"
FAILURES_OF_RUN = (
    "SELECT step, count(*), max(retry_at) FROM attempts WHERE run_id = %s "
    "AND generation = %s AND status = 'failed' GROUP BY step"
)
STEPS_IN_ORDER = f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = %s ORDER BY seq"
ATTEMPTS_IN_ORDER = (
    f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE run_id = %s ORDER BY started_at, attempt"
)
WAITS_IN_ORDER = f"SELECT {WAIT_COLUMNS} FROM waits WHERE run_id = %s ORDER BY seq"
