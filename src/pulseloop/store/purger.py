"""The background purge a worker process runs (see :mod:`pulseloop.store.retention`): a
pass when the worker starts, then one every ``check_s`` seconds, each pass one
transaction per batch of ``batch`` rows.

A pass covers every organization, not only the one the worker serves: an organization
whose workers are all stopped (a clinic that left, a paused integration) still has its
payloads purged on time by any other organization's worker. Each organization's pass
costs its policy read and one due-rows read per batch through the partial indexes
(O(due), flat in history); with several workers the passes overlap harmlessly (each
batch re-checks ``purged_at``, so a row is purged, and audited, once).
"""

from __future__ import annotations

import logging

from pulseloop.background import Background
from pulseloop.engine.clock import Clock
from pulseloop.store.retention import BATCH, PurgeReport, purge_org
from pulseloop.store.sealed.keyring import PayloadSql

log = logging.getLogger(__name__)

CHECK_S = 3600.0
"""Between passes: rows come due by the day, so an hour late is still on time."""
LIST_ORGS = "SELECT name FROM orgs ORDER BY name"


class Purger(Background):
    """Applies every organization's retention policy in the background (``org``, the
    worker's own, is always covered, even before it has a row in ``orgs``)."""

    task_name = "pulseloop-purger"

    def __init__(
        self,
        store: PayloadSql,
        org: str,
        clock: Clock,
        *,
        batch: int = BATCH,
        check_s: float = CHECK_S,
    ) -> None:
        super().__init__()  # idle: set whenever a pass has finished
        self.store = store
        self.org = org
        self.clock = clock
        self.batch = batch
        self.check_s = check_s
        self.reports: dict[str, PurgeReport] = {}
        """The last pass's report per organization (read after :attr:`idle` is set)."""

    @property
    def last(self) -> PurgeReport | None:
        """The last pass's report for the worker's own organization."""
        return self.reports.get(self.org)

    async def _loop(self) -> None:
        while True:
            try:
                await self._pass()
            except Exception:  # keep serving; the next pass retries
                log.exception("purging payloads past retention failed; retrying")
            self.idle.set()
            await self._pause(self.check_s)

    async def _pass(self) -> None:
        (rows,) = await self.store.payload_sql([(LIST_ORGS, ())])
        orgs = sorted({self.org, *(str(r[0]) for r in rows)})
        reports: dict[str, PurgeReport] = {}
        for org in orgs:
            report = reports[org] = await purge_org(
                self.store, org, self.clock.now(), batch=self.batch
            )
            if report.batches:  # counts only: no patient data
                log.info(
                    "retention purged %d runs and %d scans of %s and deleted %d webhook "
                    "deliveries in %d batches",
                    report.runs, report.scans, org, report.deliveries, len(report.batches),
                )  # fmt: skip
        self.reports = reports
