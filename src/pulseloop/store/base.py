"""The storage interface the engine is written against, documented once.

Two backends implement :class:`Store` (SQLite, PostgreSQL); the engine never sees SQL.
``Store`` is the composite of the per-concern protocols in
:mod:`pulseloop.store.protocols` (runs, the worker's side, scans, analysis jobs,
organizations, stats, schedules, run deadlines), each with its atomicity and fencing
rules written on it; code that needs only one concern asks for that protocol. The records
they exchange live in :mod:`pulseloop.store.records` and are re-exported here.
"""

from __future__ import annotations

from typing import Protocol

from pulseloop.store.audit import AuditStore
from pulseloop.store.protocols import (
    AnalysisQueue,
    ChildRuns,
    InlineCommits,
    OrgStore,
    RateLimits,
    RunDeadlines,
    RunStore,
    ScanReads,
    ScanStore,
    ScheduleStore,
    SessionStore,
    StatsStore,
    TimerPass,
    TriggerWindows,
    WorkerLiveness,
    WorkerStore,
)
from pulseloop.store.records import (
    RUN_STATUSES,
    SCAN_OPEN_STATUSES,
    SCAN_SIGNAL_PAYLOAD,
    SCAN_STATUSES,
    SCAN_TERMINAL_STATUSES,
    TERMINAL_STATUSES,
    AnalysisJob,
    AttemptRecord,
    ChildRun,
    ChildStart,
    DeployRecord,
    Firing,
    History,
    KeyRecord,
    Lease,
    LeaseLost,
    OrgRecord,
    RunDetail,
    RunFamily,
    RunRecord,
    ScanRecord,
    ScheduleRecord,
    SessionRecord,
    Signal,
    StepRecord,
    StoreStats,
    TimerOutcome,
    TriggerWindow,
    WaitRecord,
    child_signal_key,
    fallback_run_key,
    scan_signal_key,
)
from pulseloop.store.webhooks import WebhookStore

__all__ = [
    "RUN_STATUSES",
    "SCAN_OPEN_STATUSES",
    "SCAN_SIGNAL_PAYLOAD",
    "SCAN_STATUSES",
    "SCAN_TERMINAL_STATUSES",
    "TERMINAL_STATUSES",
    "AnalysisJob",
    "AnalysisQueue",
    "AttemptRecord",
    "ChildRun",
    "ChildRuns",
    "ChildStart",
    "DeployRecord",
    "Firing",
    "History",
    "InlineCommits",
    "KeyRecord",
    "Lease",
    "LeaseLost",
    "OrgRecord",
    "OrgStore",
    "RateLimits",
    "RunDeadlines",
    "RunDetail",
    "RunFamily",
    "RunRecord",
    "RunStore",
    "ScanReads",
    "ScanRecord",
    "ScanStore",
    "ScheduleRecord",
    "ScheduleStore",
    "SessionRecord",
    "SessionStore",
    "Signal",
    "StatsStore",
    "StepRecord",
    "Store",
    "StoreStats",
    "TimerOutcome",
    "TimerPass",
    "TriggerWindow",
    "TriggerWindows",
    "WaitRecord",
    "WorkerLiveness",
    "WorkerStore",
    "child_signal_key",
    "fallback_run_key",
    "scan_signal_key",
]


class Store(
    RunStore,
    WorkerStore,
    AnalysisQueue,
    OrgStore,
    StatsStore,
    ScheduleStore,
    RunDeadlines,
    ChildRuns,
    TimerPass,
    RateLimits,
    TriggerWindows,
    Protocol,
):
    """What a storage backend provides: every concern, plus opening and closing."""

    async def open(self) -> None:
        """Connect, migrate to the latest schema; refuse a newer one (SchemaTooNew)."""

    async def close(self) -> None:
        """Finish pending writes and disconnect."""

    @property
    def sessions(self) -> SessionStore:
        """Dashboard sessions and the sign-in throttle (see :class:`SessionStore`)."""

    @property
    def audit(self) -> AuditStore:
        """The append-only audit trail (see :class:`~pulseloop.store.audit.AuditStore`)."""

    @property
    def webhooks(self) -> WebhookStore:
        """Webhook endpoints and the delivery outbox (see
        :class:`~pulseloop.store.webhooks.WebhookStore`)."""
