"""Child runs through the encrypting store: a child's input is sealed like a triggered
run's (bound to the child's id), its record opened on the way out."""

from __future__ import annotations

import dataclasses

from pulseloop.store.protocols import ChildRuns
from pulseloop.store.records import ChildStart, Lease, RunFamily, RunRecord, WaitRecord


class SealedChildren:
    """The child-run half of :class:`~pulseloop.store.sealed.store.EncryptedStore`."""

    inner: ChildRuns  # provided by EncryptedStore: the wrapped backend

    async def _seal(self, org: str, text: str, column: str, *row: str) -> str:
        raise NotImplementedError  # provided by EncryptedStore

    async def _org_of(self, lease: Lease) -> str:
        raise NotImplementedError  # provided by EncryptedStore

    async def _run(self, r: RunRecord) -> RunRecord:
        raise NotImplementedError  # provided by EncryptedStore

    async def start_child(
        self, lease: Lease, child: ChildStart, wait: WaitRecord
    ) -> tuple[RunRecord, bool]:
        org = await self._org_of(lease)
        sealed = await self._seal(org, child.input, "runs.input", child.run_id)
        record, ours = await self.inner.start_child(
            lease, dataclasses.replace(child, input=sealed), wait
        )
        return await self._run(record), ours

    async def run_family(self, org: str, run_id: str, limit: int = 500) -> RunFamily | None:
        return await self.inner.run_family(org, run_id, limit)  # ids and statuses only
