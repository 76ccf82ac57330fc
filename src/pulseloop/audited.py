"""An :class:`OrgClient` that writes one audit row per patient-data read and operator action.

The HTTP layer hands each request an :class:`AuditedClient` (``server/auth.py: caller`` for
``/v1``, the dashboard's ``_signed_in``) carrying who is calling (:class:`Actor`: the API
key's id, or the dashboard session's key id, and the client's address). So every route is
audited by the one place that builds its client, not by a line in each handler, and a
route added later is audited without anyone remembering to.

A row is written after the call succeeds (a refused or unknown object writes none: an id
another organization probed is not theirs to log). Rows hold ids only (see
``store/audit.py``). Schedules (their bodies are patient data) are audited through
:class:`AuditedSchedules`, which the client's ``schedules`` hands out; reads of the audit
trail itself are audited too (``read_audit``: who looked at who looked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pulseloop.client import OrgClient
from pulseloop.durations import Duration
from pulseloop.schedules import Schedule, Schedules
from pulseloop.store.audit import AuditAction, AuditEntry, AuditRecord, AuditStore
from pulseloop.store.base import RunFamily, RunRecord, ScanRecord

if TYPE_CHECKING:
    from pulseloop.runs import Run
    from pulseloop.runtime import Runtime

CLI_ACTOR = "cli"
"""The actor of a command run on the server itself (``pulseloop keys revoke``)."""
LOCAL_ADDRESS = "local"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting and from where (ids and an address only)."""

    key_id: str
    address: str


class AuditedClient(OrgClient):
    """Acts for one organization like :class:`OrgClient`, recording each read of patient
    data (a run, a page of runs, a scan) and each operator action in the audit trail."""

    def __init__(self, runtime: Runtime, org: str, actor: Actor) -> None:
        super().__init__(runtime, org)
        self.actor = actor

    @property
    def _audit(self) -> AuditStore:
        return self.runtime.store.audit

    async def _record(self, action: AuditAction, kind: str, object_id: str) -> None:
        await self._audit.append(
            AuditEntry(
                self.org, self.clock.now(), self.actor.key_id, action, kind, object_id,
                self.actor.address,
            )
        )  # fmt: skip

    async def trigger(
        self,
        loop: str,
        body: Any = None,
        *,
        id: str | None = None,
        run_timeout: Duration | None = None,
        priority: int | None = None,
        debounce: Duration | None = None,
        debounce_key: str | None = None,
        dedupe: Duration | None = None,
        dedupe_key: str | None = None,
    ) -> Run:
        run = await super().trigger(
            loop, body, id=id, run_timeout=run_timeout, priority=priority,
            debounce=debounce, debounce_key=debounce_key, dedupe=dedupe, dedupe_key=dedupe_key,
        )  # fmt: skip
        await self._record("trigger", "run", run.id)
        return run

    async def get_run(self, run_id: str) -> Run:
        run = await super().get_run(run_id)
        await self._record("read_run", "run", run_id)
        return run

    async def list_runs(
        self, *, loop: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[Run]:
        runs = await super().list_runs(loop=loop, status=status, limit=limit)
        await self._record("list_runs", "org", self.org)
        return runs

    async def run_records(
        self,
        *,
        loop: str | None = None,
        status: str | None = None,
        limit: int = 50,
        before: float | None = None,
        before_id: str | None = None,
        since: float | None = None,
    ) -> list[RunRecord]:
        records = await super().run_records(
            loop=loop, status=status, limit=limit, before=before, before_id=before_id,
            since=since,
        )  # fmt: skip
        await self._record("list_runs", "org", self.org)
        return records

    async def cancel(self, run_id: str) -> Run:
        run = await super().cancel(run_id)
        await self._record("cancel", "run", run_id)
        return run

    async def pause(self, run_id: str) -> Run:
        run = await super().pause(run_id)
        await self._record("pause", "run", run_id)
        return run

    async def resume(self, run_id: str) -> Run:
        run = await super().resume(run_id)
        await self._record("resume", "run", run_id)
        return run

    async def retry(self, run_id: str) -> Run:
        run = await super().retry(run_id)
        await self._record("retry", "run", run_id)
        return run

    async def restart(self, run_id: str, from_step: str) -> Run:
        run = await super().restart(run_id, from_step)
        await self._record("restart", "run", run_id)
        return run

    async def get_scan(self, scan_id: str) -> ScanRecord | None:
        scan = await super().get_scan(scan_id)
        if scan is not None:
            await self._record("read_scan", "scan", scan_id)
        return scan

    @property
    def schedules(self) -> AuditedSchedules:
        return AuditedSchedules(self)

    async def audit_rows(
        self,
        *,
        object_kind: str | None = None,
        object_id: str | None = None,
        since: float | None = None,
        before: float | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[AuditRecord]:
        rows = await super().audit_rows(
            object_kind=object_kind, object_id=object_id, since=since, before=before,
            before_seq=before_seq, limit=limit,
        )  # fmt: skip
        await self._record("read_audit", "org", self.org)
        return rows

    async def record(self, action: AuditAction, kind: str, object_id: str) -> None:
        """One audit row (adding or removing a webhook endpoint)."""
        await self._record(action, kind, object_id)

    async def run_family(self, run_id: str) -> RunFamily:
        family = await super().run_family(run_id)  # ids and statuses of the runs below
        await self._record("list_runs", "run", run_id)
        return family


class AuditedSchedules(Schedules):
    """An organization's schedules, each read (a body is patient data) and each change
    recorded like the runs' (one row per call; a list's object is the organization)."""

    def __init__(self, client: AuditedClient) -> None:
        super().__init__(client)
        self._audited = client

    async def create(
        self,
        loop: str,
        *,
        cron: str,
        tz: str = "UTC",
        body: Any = None,
        id: str | None = None,
        missed: str = "skip",
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        upcoming: int = 0,
    ) -> Schedule:
        schedule = await super().create(
            loop, cron=cron, tz=tz, body=body, id=id, missed=missed, start=start, end=end,
            upcoming=upcoming,
        )  # fmt: skip
        await self._audited._record("create_schedule", "schedule", schedule.id)
        return schedule

    async def get(self, schedule_id: str, *, upcoming: int = 0) -> Schedule:
        schedule = await super().get(schedule_id, upcoming=upcoming)
        await self._audited._record("read_schedule", "schedule", schedule_id)
        return schedule

    async def list(self, *, loop: str | None = None, upcoming: int = 0) -> list[Schedule]:
        found = await super().list(loop=loop, upcoming=upcoming)
        await self._audited._record("list_schedules", "org", self._audited.org)
        return found

    async def pause(self, schedule_id: str, *, upcoming: int = 0) -> Schedule:
        schedule = await super().pause(schedule_id, upcoming=upcoming)
        await self._audited._record("pause_schedule", "schedule", schedule_id)
        return schedule

    async def resume(self, schedule_id: str, *, upcoming: int = 0) -> Schedule:
        schedule = await super().resume(schedule_id, upcoming=upcoming)
        await self._audited._record("resume_schedule", "schedule", schedule_id)
        return schedule

    async def delete(self, schedule_id: str) -> None:
        await super().delete(schedule_id)
        await self._audited._record("delete_schedule", "schedule", schedule_id)


async def record_key_event(
    audit: AuditStore, org: str, at: float, action: AuditAction, key_id: str, actor: Actor
) -> None:
    """One row for an action on an API key (``sign_in`` with it, ``revoke_key``)."""
    await audit.append(AuditEntry(org, at, actor.key_id, action, "key", key_id, actor.address))
