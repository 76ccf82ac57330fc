"""Retention: how long an organization keeps patient payloads, and purging them.

A purge clears a finished run's payloads (input, output, error, summary; its steps'
outputs and errors, its attempts' errors, its signals' payloads) and its terminal scans'
metadata and results, and records ``purged_at``; a scan link still live ends then. It
keeps the skeleton operators and audits need: ids, statuses, step names, attempts and
every other time. Columns declared NOT NULL (a run's input, a scan's metadata, a
signal's payload) hold the JSON text ``null``; the others NULL.
Nothing purged is sealed, so the encryption layer has nothing to open or re-encrypt.
Finished webhook deliveries past the same period are deleted with their attempt logs
(they are log lines holding ids and status codes; without this the tables grew forever).

Design record. A purge could (a) delete finished runs, (b) rewrite their payloads in place,
or (c) move them to an archive table. (a) loses the timings and statuses compliance reports
and ``/metrics`` read; (c) doubles every read path. (b) it is: each batch is one transaction
of O(batch) statements that read the due rows oldest first through partial indexes a purged
row leaves (migration 0012), so the cost per batch stays flat however much history there is.

The SQL is written once with ``?`` placeholders and run through the backend's
:class:`~pulseloop.store.sealed.keyring.PayloadSql` (both backends implement it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulseloop.errors import OrgNotFound, PulseloopError
from pulseloop.store.audit import AuditEntry, AuditStore
from pulseloop.store.records import SCAN_TERMINAL_STATUSES
from pulseloop.store.sealed.keyring import PayloadSql, Statement

DEFAULT_DAYS = 90
"""How long payloads of finished runs and terminal scans are kept unless an organization
sets its own policy."""
MAX_DAYS = 36500
BATCH = 200
DAY_S = 86400.0

GET_POLICY = "SELECT retention_days FROM orgs WHERE name = ?"
SET_POLICY = "UPDATE orgs SET retention_days = ? WHERE name = ? RETURNING name"

_DUE_RUN = "org = ? AND finished_at IS NOT NULL AND purged_at IS NULL AND finished_at < ?"
DUE_RUNS = f"SELECT run_key FROM runs WHERE {_DUE_RUN} ORDER BY finished_at LIMIT ?"
COUNT_DUE_RUNS = f"SELECT count(*) FROM runs WHERE {_DUE_RUN}"
_DUE_SCAN = (
    "org = ? AND completed_at IS NOT NULL AND purged_at IS NULL AND completed_at < ? "
    "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.org = scans.org AND r.id = scans.run_id "
    "AND r.finished_at IS NULL)"
)
"""A terminal scan whose run is unfinished stays: the run may still read it."""
DUE_SCANS = f"SELECT id FROM scans WHERE {_DUE_SCAN} ORDER BY completed_at LIMIT ?"
COUNT_DUE_SCANS = f"SELECT count(*) FROM scans WHERE {_DUE_SCAN}"
_DUE_DELIVERY = "org = ? AND finished_at IS NOT NULL AND finished_at < ?"
"""A webhook delivery delivered or failed for good (``finished_at`` is set only then and
never cleared: nothing resends it), read through ``webhook_deliveries_finished`` (0020)."""
DUE_DELIVERIES = (
    f"SELECT id FROM webhook_deliveries WHERE {_DUE_DELIVERY} ORDER BY finished_at LIMIT ?"
)
COUNT_DUE_DELIVERIES = f"SELECT count(*) FROM webhook_deliveries WHERE {_DUE_DELIVERY}"


class InvalidRetention(PulseloopError):
    """A retention period out of range."""


def check_days(days: int) -> int:
    """1 to 36500 whole days."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidRetention(
            f"retention of {days} days is out of range; give 1 to {MAX_DAYS} days"
        )
    return days


@dataclass(frozen=True, slots=True)
class PurgeBatch:
    """What one batch purged (or, in a dry run, would purge)."""

    org: str
    runs: tuple[str, ...] = ()
    """Run ids purged."""
    scans: tuple[str, ...] = ()
    """Scan ids purged."""
    deliveries: tuple[int, ...] = ()
    """Webhook delivery ids deleted (with their attempts)."""

    def __bool__(self) -> bool:
        return bool(self.runs or self.scans or self.deliveries)


@dataclass(slots=True)
class PurgeReport:
    """A whole purge of one organization: its batches, or a dry run's counts."""

    org: str
    cutoff: float
    """Payloads of rows finished before this instant (epoch seconds) were purged."""
    dry_run: bool = False
    runs: int = 0
    scans: int = 0
    deliveries: int = 0
    """Finished webhook deliveries deleted, with their attempt logs."""
    batches: list[PurgeBatch] = field(default_factory=list)


async def retention_days(sql: PayloadSql, org: str) -> int:
    """The organization's retention period in days (the default if it set none)."""
    (rows,) = await sql.payload_sql([(GET_POLICY, (org,))])
    return int(rows[0][0]) if rows and rows[0][0] is not None else DEFAULT_DAYS


async def set_retention_days(sql: PayloadSql, org: str, days: int | None) -> int:
    """Set ``org``'s retention period (None: back to the default); the period now in force."""
    (rows,) = await sql.payload_sql(
        [(SET_POLICY, (None if days is None else check_days(days), org))]
    )
    if not rows:
        raise OrgNotFound(f"no organization named {org!r}; see `pulseloop orgs list`")
    return DEFAULT_DAYS if days is None else days


_TERMINAL = "(" + ", ".join(f"'{s}'" for s in sorted(SCAN_TERMINAL_STATUSES)) + ")"


def _marks(n: int) -> str:
    return ", ".join("?" for _ in range(n))


def _purge_runs(org: str, keys: Sequence[str], cutoff: float, now: float) -> list[Statement]:
    """One transaction purging the runs ``keys`` still due, their history and terminal
    scans. The runs' UPDATE re-checks that each is still due (an operator may have retried
    it meanwhile); the rest touch only runs it marked, found by key (a unique index) and
    ``purged_at``. The runs' ids come back from the first statement, the scans' from the
    last."""
    marks = _marks(len(keys))
    mine = f"SELECT run_key FROM runs WHERE run_key IN ({marks}) AND purged_at = ?"
    ids = f"SELECT id FROM runs WHERE run_key IN ({marks}) AND purged_at = ?"
    # terminal by status, not by completed_at: that would steer the planner to the
    # scans_purgeable index (every due scan) instead of the run's own scans
    scans = f"org = ? AND run_id IN ({ids}) AND status IN {_TERMINAL} AND purged_at IS NULL"
    return [
        (
            "UPDATE runs SET input = 'null', output = NULL, error = NULL, summary = NULL, "
            f"purged_at = ? WHERE run_key IN ({marks}) AND finished_at IS NOT NULL "
            "AND finished_at < ? AND purged_at IS NULL RETURNING id",
            (now, *keys, cutoff),
        ),
        (f"UPDATE steps SET output = NULL, error = NULL WHERE run_id IN ({mine})", (*keys, now)),
        (f"UPDATE attempts SET error = NULL WHERE run_id IN ({mine})", (*keys, now)),
        (f"UPDATE signals SET payload = 'null' WHERE run_id IN ({mine})", (*keys, now)),
        (f"DELETE FROM waits WHERE run_id IN ({mine})", (*keys, now)),
        *_purge_scans(scans, (org, *keys, now), now),
    ]


def _purge_scans(where: str, params: tuple[Any, ...], now: float) -> list[Statement]:
    """Purge the scans ``where`` selects (and drop any analysis job left of them); the
    second-last statement returns the jobs dropped, the last the scans' ids."""
    return [
        (
            f"DELETE FROM analysis_jobs WHERE scan_id IN (SELECT id FROM scans WHERE {where}) "
            "RETURNING scan_id, kind, payload",
            params,
        ),
        (  # a link still live ends now: its page shows "ended", not an empty result
            "UPDATE scans SET metadata = 'null', result = NULL, purged_at = ?, "
            "expires_at = CASE WHEN expires_at > ? THEN ? ELSE expires_at END "
            f"WHERE {where} RETURNING id",
            (now, now, now, *params),
        ),
    ]


async def purge_batch(
    sql: PayloadSql, org: str, cutoff: float, now: float, limit: int = BATCH
) -> PurgeBatch:
    """Purge up to ``limit`` due runs of ``org`` (with their terminal scans), else up to
    ``limit`` due scans, else delete up to ``limit`` finished webhook deliveries; what was
    purged (empty: nothing was due)."""
    (keys,) = await sql.payload_sql([(DUE_RUNS, (org, cutoff, limit))])
    if keys:
        results = await sql.payload_sql(_purge_runs(org, [str(k[0]) for k in keys], cutoff, now))
        await _remove_videos(sql, results[-2])
        return PurgeBatch(
            org, tuple(str(r[0]) for r in results[0]), tuple(str(r[0]) for r in results[-1])
        )
    (due,) = await sql.payload_sql([(DUE_SCANS, (org, cutoff, limit))])
    if not due:
        return await purge_deliveries(sql, org, cutoff, limit)
    scan_ids = [str(r[0]) for r in due]
    where = f"id IN ({_marks(len(scan_ids))}) AND purged_at IS NULL"
    results = await sql.payload_sql(_purge_scans(where, tuple(scan_ids), now))
    await _remove_videos(sql, results[-2])
    return PurgeBatch(org, (), tuple(str(r[0]) for r in results[-1]))


async def purge_deliveries(sql: PayloadSql, org: str, cutoff: float, limit: int) -> PurgeBatch:
    """Delete up to ``limit`` finished webhook deliveries of ``org`` and their attempts.

    Deleted, not blanked like runs: a delivery is a log line about a run (ids, a status
    code), its run keeps the timeline, and a row kept forever per notification is what
    made the tables grow without end. Attempts go first, by their primary key's prefix."""
    (due,) = await sql.payload_sql([(DUE_DELIVERIES, (org, cutoff, limit))])
    if not due:
        return PurgeBatch(org)
    ids = [int(r[0]) for r in due]
    marks = _marks(len(ids))
    _, deleted = await sql.payload_sql(
        [
            (f"DELETE FROM webhook_attempts WHERE delivery_id IN ({marks})", tuple(ids)),
            (
                f"DELETE FROM webhook_deliveries WHERE id IN ({marks}) "
                "AND finished_at IS NOT NULL AND finished_at < ? RETURNING id",
                (*ids, cutoff),
            ),
        ]
    )
    return PurgeBatch(org, deliveries=tuple(sorted(int(r[0]) for r in deleted)))


async def _remove_videos(sql: PayloadSql, jobs: list[tuple[Any, ...]]) -> None:
    """Delete the uploaded video files named by analysis jobs a purge dropped. A terminal
    scan has none (its outcome deletes its job); this is for one a crash left behind. The
    path is sealed like any payload: opened through the encryption layer when there is one."""
    opener = getattr(sql, "open_stored", None)
    for scan_id, kind, payload in jobs:
        if kind != "video":
            continue
        path = await opener(payload, "analysis_jobs.payload", scan_id) if opener else payload
        if path:
            with contextlib.suppress(OSError):  # gone already; a purge must not stop here
                Path(str(path)).unlink(missing_ok=True)


async def audit_purge(sql: PayloadSql, batch: PurgeBatch, actor: str, at: float) -> None:
    """One audit row (action ``purge``) per run and per scan ``batch`` purged, by ``actor``
    (``retention`` for the workers' background pass, ``cli`` for ``pulseloop purge``).
    Called once per batch that purged something; ids only, like every audit row. Deleted
    webhook deliveries are not audited: they held no patient data (ids and status codes)."""
    audit: AuditStore | None = getattr(sql, "audit", None)
    if audit is None:  # a store without the audit trail (tools, older tests)
        return
    for kind, ids in (("run", batch.runs), ("scan", batch.scans)):
        for object_id in ids:
            await audit.append(AuditEntry(batch.org, at, actor, "purge", kind, object_id, "local"))


async def purge_org(
    sql: PayloadSql,
    org: str,
    now: float,
    *,
    older_than_days: int | None = None,
    dry_run: bool = False,
    batch: int = BATCH,
    actor: str = "retention",
) -> PurgeReport:
    """Purge every due payload of ``org``, one batch per transaction, oldest first, then
    delete its finished webhook deliveries past the same period.

    ``older_than_days`` overrides the organization's policy (None: its policy). A dry run
    counts what is due and changes nothing."""
    days = older_than_days if older_than_days is not None else await retention_days(sql, org)
    cutoff = now - check_days(days) * DAY_S
    report = PurgeReport(org, cutoff, dry_run)
    if dry_run:
        runs, scans, deliveries = await sql.payload_sql(
            [
                (COUNT_DUE_RUNS, (org, cutoff)),
                (COUNT_DUE_SCANS, (org, cutoff)),
                (COUNT_DUE_DELIVERIES, (org, cutoff)),
            ]
        )
        report.runs, report.scans = int(runs[0][0]), int(scans[0][0])
        report.deliveries = int(deliveries[0][0])
        return report
    while True:
        done = await purge_batch(sql, org, cutoff, now, batch)
        if not done:
            return report
        await audit_purge(sql, done, actor, now)
        report.batches.append(done)
        report.runs += len(done.runs)
        report.scans += len(done.scans)
        report.deliveries += len(done.deliveries)
